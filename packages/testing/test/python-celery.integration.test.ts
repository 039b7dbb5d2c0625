import { randomUUID } from "node:crypto";
import { expect, it } from "vitest";
import { runPythonClient, startPythonWorker, testServers } from "../src/index.ts";

// The harness itself: Python Celery talking to Python Celery over the real Redis, before any
// interop test builds on it.
it("runs Python Celery's worker and client against each other over Redis", async () => {
  const queue = `interop-harness-${randomUUID()}`;
  const config = {
    brokerUrl: testServers().redisUrl,
    resultBackend: testServers().redisUrl,
  };
  const worker = await startPythonWorker({ ...config, queues: [queue] });
  try {
    const sum = await runPythonClient(config, {
      op: "apply_async",
      task: "interop.add",
      args: [2, 3],
      queue,
      timeout: 20,
    });
    expect(sum).toMatchObject({ status: "SUCCESS", result: 5 });
    const failure = await runPythonClient(config, {
      op: "apply_async",
      task: "interop.fail",
      args: ["boom"],
      queue,
      timeout: 20,
    });
    expect(failure).toMatchObject({
      status: "FAILURE",
      exc_type: "ValueError",
      exc_message: "boom",
    });
  } finally {
    expect(await worker.stop()).toBe(0);
  }
}, 60_000);
