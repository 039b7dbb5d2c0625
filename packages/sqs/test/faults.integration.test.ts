import { join } from "node:path";
import { testServers } from "@celery-ts/testing";
import { describe, it } from "vitest";
import { killWorkerAndSupervisor, withBench } from "../../worker/test/faults/scenarios.ts";
// Registers sqs:// for this process's client; the workers load it through their tasks.
import "../src/index.ts";
import { CREDENTIALS, REGION, useFauxqs } from "./support/fauxqs.ts";

const TASKS = join(import.meta.dirname, "fixtures/fault-tasks.ts");

const fauxqs = useFauxqs();

// Fault tests on fauxqs, run in this process on a loopback port: the workers are child processes
// and reach it over 127.0.0.1 as they would reach SQS. With the defaults: a dead worker's
// messages are invisible for the visibility timeout (9 s) and back within 10 s. Results go to the
// shared Redis (SQS has no result backend; task ids are unique). A broker outage is not tested:
// SQS is a service reached by HTTP requests, with no connection to lose (see
// docs/delivery-semantics.md).
describe("faults on SQS (fauxqs)", () => {
  it("SIGKILL mid-batch of a worker and of a supervisor: the worker's tasks come back within 10 s, the children stop, none lost, a slow task on a live worker runs once", async () => {
    const { host } = new URL(fauxqs.endpoint());
    const { accessKeyId, secretAccessKey } = CREDENTIALS;
    const broker = `sqs://${accessKeyId}:${secretAccessKey}@${host}?region=${REGION}`;
    // The slow task: half as long again as the visibility timeout (9 s), extended meanwhile.
    await withBench(
      "sigkill",
      broker,
      testServers().redisUrl,
      (bench) => killWorkerAndSupervisor(bench, { slowMs: 14_000 }).then(() => undefined),
      TASKS,
    );
  }, 150_000);
});
