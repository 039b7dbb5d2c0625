// SQS, against fauxqs (an SQS emulator) started in this process on a loopback port the OS picks:
// nothing listens beyond 127.0.0.1, and nothing reaches AWS.
import { buildApp } from "fauxqs";
import { celeryTsFigures, type Setup } from "./celery-ts.ts";
import { cell, latencyPercentile, type Figures } from "./figures.ts";
import { redisSetup } from "./redis.ts";
import type { Section } from "./report.ts";

const REGION = "us-east-1";

/** fauxqs on 127.0.0.1 (its own startFauxqs listens on every interface), for the length of `fn`. */
async function withFauxqs<T>(fn: (host: string) => Promise<T>): Promise<T> {
  const app = buildApp({ logger: false, defaultRegion: REGION });
  const endpoint = await app.listen({ port: 0, host: "127.0.0.1" });
  try {
    return await fn(new URL(endpoint).host);
  } finally {
    await app.close();
  }
}

export async function sqsSection(total: number): Promise<Section> {
  const figures: Figures = await withFauxqs((host) => {
    let scenario = 0;
    const setup: Setup = {
      // fauxqs takes any credentials; these keep the SDK off the AWS credential chain. A second's
      // long poll lets a worker stop quickly (the default, 10 s, is what a graceful close waits).
      broker: `sqs://test:test@${host}?region=${REGION}&wait_time_seconds=1`,
      backend: redisSetup.backend,
      // A queue per scenario (fauxqs forgets them all when it stops) rather than PurgeQueue, which
      // SQS allows once a minute per queue.
      fresh: async () => {
        await redisSetup.fresh(); // the results
        return `celery-ts-bench-${++scenario}`;
      },
    };
    return celeryTsFigures(total, setup);
  });
  const p = latencyPercentile;
  const row = (scenario: string, value: number | undefined, unit: string) => ({
    scenario,
    cells: [cell(value, undefined, unit)],
  });
  return {
    title: `SQS (fauxqs 2.4, an emulator, in-process): celery-ts, ${total} no-op tasks`,
    columns: ["celery-ts"],
    rows: [
      row(`enqueue one by one (${total / 4}, each awaited)`, figures.enqueueOne, "/s"),
      row(`enqueue in bulk (${total}, batches of 1,000)`, figures.enqueueBulk, "/s"),
      row(`process, concurrency 50 (${total} queued)`, figures.process50, "/s"),
      row(`process, concurrency 1 (${total / 10} queued)`, figures.process1, "/s"),
      row("round trip p50 (send, then await the result)", p(figures, 50), "ms"),
      row("round trip p99", p(figures, 99), "ms"),
    ],
    notes: `fauxqs is an emulator running in the bench's own process and event loop: these figures measure
celery-ts's SQS transport against it (the HTTP calls and kombu's message format included), and
say nothing about AWS, whose every call crosses a network and has its own latency and limits.
Results go to the run's Redis, under a key prefix of the bench's own. Concurrent delay() calls go out in SendMessageBatch calls of 10;
receives take up to 10 messages at a time (as many as the worker has room for, so 1 at concurrency
1), long polls wait at most 1 second, and acks are deleted in batches gathered over 5 ms
(\`ackBatchWindowMs\`): at concurrency 1 the worker takes its next message once the last one's ack
is done, so that window is most of a round trip and caps processing at a little over 100/s.`,
  };
}
