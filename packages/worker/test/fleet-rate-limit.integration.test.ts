import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@celery-ts/client";
import { deleteRedisPrefix, testServers } from "@celery-ts/testing";
import { afterAll, describe, expect, it } from "vitest";
import { CliProcess, TASKS } from "./cli-process.ts";
import { fleetLimited } from "./fixtures/cli-tasks.ts";

const REDIS = testServers().redisUrl;
// The limit's correctness: three worker processes never run more than the limit allows. How close
// to the limit they run over a minute is measured in `pnpm bench` (BENCH=fleet), not here.
const RATE = 100;
const WORKERS = 3;
/** Seconds measured, after a warm-up once the first task ran. */
const MEASURE_S = 10;
const WARM_UP_S = 2;

describe("a fleet-wide rate limit on Redis", () => {
  const prefix = `celery-ts-test:fleet:${randomUUID()}:`;
  const url = `${REDIS}?global_keyprefix=${prefix}`;
  const queue = "fleet";
  const dir = mkdtempSync(join(tmpdir(), "celery-ts-fleet-"));
  const log = join(dir, "runs.log");
  const workers: CliProcess[] = [];

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    rmSync(dir, { recursive: true, force: true });
    await deleteRedisPrefix(REDIS, prefix);
  });

  it(`keeps ${WORKERS} worker processes under ${RATE}/s (plus one window) in any second`, async () => {
    writeFileSync(log, "");
    const client = createClient({ broker: url });
    // More than the minute can take, so the workers are never short of work.
    const total = RATE * (WARM_UP_S + MEASURE_S + 10);
    const handle = client.task(fleetLimited);
    for (let i = 0; i < total; i += 500) {
      await Promise.all(
        Array.from({ length: Math.min(500, total - i) }, (_, j) =>
          handle.applyAsync([i + j], { queue }),
        ),
      );
    }
    for (let n = 0; n < WORKERS; n++) {
      workers.push(
        new CliProcess(
          ["worker", "--app", TASKS, "--broker", url, "--queues", queue, "--processes", "1"].concat(
            ["--log-format", "json", "--log-level", "warn"],
          ),
          { CELERY_TS_TEST_LOG: log },
        ),
      );
    }
    const startedAt = (): number[] =>
      readFileSync(log, "utf8")
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((line) => Number(line.split(" ")[2]));
    // Three node processes start first: bounded, with room for a loaded machine.
    await expect.poll(() => startedAt().length, { timeout: 120_000 }).toBeGreaterThan(0);
    const first = Math.min(...startedAt());
    const from = first + WARM_UP_S * 1000;
    const to = from + MEASURE_S * 1000;
    await expect
      .poll(() => Math.max(...startedAt()), {
        timeout: (WARM_UP_S + MEASURE_S + 30) * 1000,
        interval: 1000,
      })
      .toBeGreaterThanOrEqual(to);
    await Promise.all(workers.map((w) => w.stop()));
    await client.close();

    const runs = startedAt();
    const measured = runs.filter((t) => t >= from && t < to).length;
    const rate = measured / MEASURE_S;
    const perSecond = new Map<number, number>();
    for (const t of runs.filter((t) => t >= from && t < to)) {
      const second = Math.floor((t - from) / 1000);
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
    }
    // The most runs that started within any one second (a window sliding over the start times).
    const sorted = runs.filter((t) => t >= from && t < to).sort((a, b) => a - b);
    let busiest = 0;
    for (let i = 0, j = 0; i < sorted.length; i++) {
      while (sorted[j]! < sorted[i]! - 999) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    const pids = new Set(
      readFileSync(log, "utf8")
        .trim()
        .split("\n")
        .map((line) => line.split(" ")[1]),
    );
    process.stdout.write(
      `fleet rate limit ${RATE}/s, ${WORKERS} workers (${pids.size} ran tasks): ` +
        `${measured} runs in ${MEASURE_S} s = ${rate.toFixed(2)}/s ` +
        `(${(((rate - RATE) / RATE) * 100).toFixed(2)}%); per second min ` +
        `${Math.min(...perSecond.values())}, max ${Math.max(...perSecond.values())}; ` +
        `busiest sliding second ${busiest}\n`,
    );
    expect(pids.size).toBe(WORKERS);
    // The store counts runs in fixed one-second windows of RATE each: a second that straddles two
    // windows holds at most both, and the whole run at most one window more than its seconds (one
    // more for start times logged just after their window's end). Unshared, three workers would
    // run 3 * RATE a second.
    expect(busiest).toBeLessThanOrEqual(2 * RATE);
    expect(measured).toBeLessThanOrEqual((MEASURE_S + 2) * RATE);
  }, 300_000);
});
