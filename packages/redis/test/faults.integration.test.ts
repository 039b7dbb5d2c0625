import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep, until } from "../../worker/test/faults/harness.ts";
import { killWorkerAndSupervisor, withBench } from "../../worker/test/faults/scenarios.ts";
import { PrivateRedis } from "./support/private-redis.ts";

// Fault tests on a redis-server of their own (never the shared one): persistent (AOF, fsync on
// every write), so that killing it loses nothing it acknowledged. Defaults throughout: the
// promise is about what a user gets without tuning.
describe("faults on Redis", () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = await PrivateRedis.start({ args: ["--appendonly", "yes", "--appendfsync", "always"] });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("SIGKILL mid-batch of a worker and of a supervisor: the worker's tasks come back within 10 s, the children stop, none lost, a slow task on a live worker runs once", async () => {
    // The slow task: longer than the liveness timeout (6 s) and a scan (1 s), with room.
    await withBench("sigkill", server.url, server.url, (bench) =>
      killWorkerAndSupervisor(bench, { slowMs: 9_000 }).then(() => undefined),
    );
  }, 150_000);

  it("Redis killed and restarted: nothing lost or stranded, the workers stay up, log the drop and the recovery once, a producer gets success or a clear error", async () => {
    await withBench("broker-restart", server.url, server.url, async (bench) => {
      await bench.publish(600);
      const workers = [
        bench.startWorker(["--processes", "1", "--concurrency", "10"]),
        bench.startWorker(["--processes", "1", "--concurrency", "10"]),
      ];
      await until(() => bench.completed() >= 200, 60_000, "200 completions");
      await server.kill();
      bench.fault();
      // Longer than every default timeout of an operation (5 s), so tasks finish and acks fail
      // while it is down, and than the liveness timeout (6 s), so every consumer's lease runs out
      // and none may take another's messages when it returns.
      const down = Date.now();
      // Sent during the outage: the client's own retries may carry it past the restart.
      const publishing = bench.tryPublish();
      await sleep(9_000);
      await server.restart();
      const back = Date.now();
      const publishWhileDown = await publishing;
      // Recovery: from the broker's return to the next task completed.
      const recovery = await bench.recovered(back);
      const figures = await bench.figures(recovery, 90, {
        downSeconds: (back - down) / 1000,
        publishWhileDown,
      });
      // A worker logs its reconnection when its first connection is back, which may come after
      // the other worker's results are in.
      const reconnected = new RegExp(
        `^redis: reconnected to 127\\.0\\.0\\.1:${server.port}/0 after [\\d.]+ s$`,
      );
      await until(
        () => workers.every((w) => w.lines.some((l) => reconnected.test(String(l.msg)))),
        30_000,
        "each worker to log its reconnection",
      );
      // What each worker logged about the outage: its connections' drops and returns, and the
      // results it kept (debug lines aside), once every result is in.
      const outageLines = workers.map((worker) =>
        worker.lines
          .filter((l) => l.level !== "debug")
          .map((l) => String(l.msg))
          .filter((msg) =>
            /^(redis: (lost|reconnected)|could not write|the server is back)/.test(msg),
          ),
      );
      console.log(`[fault figures] outage log lines: ${JSON.stringify(outageLines)}`);
      expect(figures.lost).toBe(0);
      // No consumer took another's messages when it returned: every lease had run out.
      expect(figures.runTwice).toBe(0);
      expect(["sent", "CONNECTION error"]).toContain(publishWhileDown);
      for (const [n, worker] of workers.entries()) {
        expect(worker.child.exitCode).toBe(null);
        // Logged once each for the whole worker (its transport's three connections and its
        // backend's, all to this server), by the worker's own logger (built from a URL)...
        const lost = `redis: lost the connection to 127.0.0.1:${server.port}/0; retrying with backoff`;
        expect(worker.lines.filter((l) => String(l.msg) === lost)).toHaveLength(1);
        expect(worker.lines.filter((l) => reconnected.test(String(l.msg)))).toHaveLength(1);
        expect(outageLines[n]!.filter((msg) => msg.startsWith("redis: "))).toHaveLength(2);
        // ...and nothing about the outage twice (one line per connection and event).
        expect(new Set(outageLines[n]).size).toBe(outageLines[n]!.length);
      }
    }).finally(async () => {
      if (!server.running) await server.restart();
    });
  }, 180_000);
});
