// celery-node 0.5, measured the same way on Redis and RabbitMQ: its worker in-process.
import * as celeryNode from "celery-node";
import { enqueue, type Setup } from "./celery-ts.ts";
import { LATENCY_ROUNDS, type Figures } from "./figures.ts";
import { perSecond, timed, until } from "./stats.ts";

/**
 * Processing of `total` queued tasks, and round trips. celery-node has no concurrency setting
 * (its only mode stands under "concurrency 50") and its delay() does not await the publish, so the
 * queue is filled by celery-ts, and celery-node's enqueue is not measured. Its get() polls the
 * backend (here every millisecond), so it gets a fifth of the rounds.
 */
export async function celeryNodeFigures(total: number, setup: Setup): Promise<Figures> {
  const figures: Figures = {};
  const queue = await setup.fresh();
  await enqueue(setup.broker, queue, total, true);
  let done = 0;
  const worker = celeryNode.createWorker(setup.broker, setup.backend, queue);
  worker.register("bench.noop", (n: number) => {
    done++;
    return n;
  });
  figures.process50 = perSecond(
    total,
    await timed(async () => {
      void worker.start();
      await until(() => done, total);
    }),
  );

  // The worker goes on consuming the queue: it runs the round trips' tasks.
  await setup.fresh();
  const client = celeryNode.createClient(setup.broker, setup.backend, queue);
  figures.latency = [];
  for (let i = 0; i < LATENCY_ROUNDS / 5; i++) {
    figures.latency.push(
      await timed(() => client.createTask("bench.noop").applyAsync([i]).get(30_000, 1)),
    );
  }
  await Promise.all([client.disconnect(), worker.disconnect()]);
  return figures;
}
