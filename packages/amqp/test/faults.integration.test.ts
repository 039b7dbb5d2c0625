import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { testServers } from "@celery-ts/testing";
import { afterAll, beforeAll, describe, it } from "vitest";
import { killWorkerAndSupervisor, withBench } from "../../worker/test/faults/scenarios.ts";
import { BROKER_URL } from "./support/rabbit.ts";

const run = promisify(execFile);
const rabbitmqctl = (...args: string[]) => run("rabbitmqctl", args, { timeout: 30_000 });

// Fault tests on a vhost of their own, created here and deleted after. Results go to the shared
// Redis (task ids are unique). The server closing every connection is
// close-all-connections.integration.test.ts's.
describe("faults on RabbitMQ", () => {
  const vhost = `celery_ts_faults_${randomUUID().slice(0, 8)}`;
  const url = new URL(BROKER_URL);
  url.pathname = `/${vhost}`;
  const broker = url.toString();
  const backend = testServers().redisUrl;
  beforeAll(async () => {
    await rabbitmqctl("add_vhost", vhost);
    await rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*");
  }, 120_000);
  afterAll(async () => {
    await rabbitmqctl("delete_vhost", vhost);
  }, 120_000);

  it("SIGKILL mid-batch of a worker and of a supervisor: the worker's tasks come back within 10 s, the children stop, none lost, a slow task on a live worker runs once", async () => {
    await withBench("sigkill", broker, backend, (bench) =>
      killWorkerAndSupervisor(bench, { slowMs: 5_000 }).then(() => undefined),
    );
  }, 150_000);
});
