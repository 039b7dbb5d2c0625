import { join } from "node:path";
import { testServers } from "@celery-ts/testing";
import { describe, it } from "vitest";
import { killWorkerAndSupervisor, withBench } from "../../worker/test/faults/scenarios.ts";
// Registers postgres:// for this process's client; the workers load it through their tasks.
import "../src/index.ts";

const TASKS = join(import.meta.dirname, "fixtures/fault-tasks.ts");

// Fault tests on the shared PostgreSQL (each on a queue of its own), with the defaults: a dead
// worker's lease (8 s) runs out and its messages are back within 10 s. The server is shared, so
// it is not restarted here.
describe("faults on PostgreSQL", () => {
  const url = testServers().postgresUrl;

  it("SIGKILL mid-batch of a worker and of a supervisor: the worker's tasks come back within 10 s, the children stop, none lost, a slow task on a live worker runs once", async () => {
    // The slow task: half as long again as the lease (8 s), renewed meanwhile.
    await withBench(
      "sigkill",
      url,
      url,
      (bench) => killWorkerAndSupervisor(bench, { slowMs: 12_000 }).then(() => undefined),
      TASKS,
    );
  }, 150_000);
});
