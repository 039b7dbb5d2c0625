import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, it } from "vitest";
import { killWorkerAndSupervisor, withBench } from "../../worker/test/faults/scenarios.ts";

// Fault tests on a SQLite file, with the defaults: a dead worker's lease (8 s) runs out and its
// messages are back within 10 s. A server outage does not apply: there is no server.
describe("faults on SQLite", () => {
  const dir = mkdtempSync(join(tmpdir(), "celery-ts-sqlite-faults-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const url = (name: string) => `sqlite:///${join(dir, `${name}.db`)}`;

  it("SIGKILL mid-batch of a worker and of a supervisor: the worker's tasks come back within 10 s, the children stop, none lost, a slow task on a live worker runs once", async () => {
    // The slow task: half as long again as the lease (8 s), renewed meanwhile.
    await withBench("sigkill", url("kill"), url("kill"), (bench) =>
      killWorkerAndSupervisor(bench, { slowMs: 12_000 }).then(() => undefined),
    );
  }, 150_000);
});
