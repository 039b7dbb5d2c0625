import {
  CeleryTsError,
  MemoryBroker,
  createMemoryTransport,
  declareTask,
  isCeleryTsError,
  type Logger,
  type RetryPolicy,
  type Transport,
} from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { createClient } from "../src/index.ts";

const add = declareTask<[number, number], number>("tasks.add");
const quick: RetryPolicy = { delay: 0.001, jitter: false };

const connectionLost = (): CeleryTsError =>
  new CeleryTsError("CONNECTION", "connection reset by peer", { pkg: "memory", retryable: true });

/** A memory transport whose first `failures` publishes throw `error()`. */
function flaky(failures: number, error: () => unknown) {
  const broker = new MemoryBroker();
  const inner = createMemoryTransport({ broker });
  let attempts = 0;
  const transport: Transport = {
    ...inner,
    async publish(message, options) {
      attempts++;
      if (attempts <= failures) throw error();
      await inner.publish(message, options);
    },
  };
  const queued = (): number => {
    let count = 0;
    while (broker.take(["celery"], Infinity)) count++;
    return count;
  };
  return { transport, attempts: () => attempts, queued };
}

function recordingLogger() {
  const warnings: Record<string, unknown>[] = [];
  const noop = (): void => {};
  const logger: Logger = {
    debug: noop,
    info: noop,
    error: noop,
    warn: (_m, f = {}) => warnings.push(f),
  };
  return { logger, warnings };
}

describe("publish retries", () => {
  it("retries a retryable broker error, then sends", async () => {
    const broker = flaky(2, connectionLost);
    const { logger, warnings } = recordingLogger();
    const client = createClient({ broker: broker.transport, publishRetry: quick, logger });
    const result = await client.task(add).delay(2, 3);
    expect(broker.attempts()).toBe(3);
    expect(broker.queued()).toBe(1);
    expect(warnings).toEqual([
      expect.objectContaining({ task: "tasks.add", id: result.id, attempt: 1 }),
      expect.objectContaining({ task: "tasks.add", id: result.id, attempt: 2 }),
    ]);
  });

  it("gives up after maxRetries with an error naming the task and the broker", async () => {
    const broker = flaky(Infinity, connectionLost);
    const client = createClient({
      broker: broker.transport,
      publishRetry: { ...quick, maxRetries: 3 },
    });
    const error: unknown = await client
      .task(add)
      .applyAsync([2, 3], { taskId: "t-1", queue: "math" })
      .catch((e) => e);
    expect(broker.attempts()).toBe(4);
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect((error as CeleryTsError).retryable).toBe(true);
    expect((error as Error).message).toBe(
      '[celery-ts:client] could not send task tasks.add[t-1] to queue "math" on the memory broker ' +
        "after 4 attempts: [celery-ts:memory] connection reset by peer",
    );
    expect(isCeleryTsError((error as Error).cause, "CONNECTION")).toBe(true);
  });

  it.each([
    [
      "a non-retryable celery-ts error",
      () => new CeleryTsError("CLOSED", "the transport is closed"),
      "CLOSED",
    ],
    ["an error a driver did not map", () => new Error("EACCES"), "CONNECTION"],
  ])("does not retry %s", async (_case, error, code) => {
    const broker = flaky(1, error);
    const client = createClient({ broker: broker.transport, publishRetry: quick });
    const failure: unknown = await client
      .task(add)
      .delay(2, 3)
      .catch((e) => e);
    expect(broker.attempts()).toBe(1);
    expect(isCeleryTsError(failure, code as "CLOSED")).toBe(true);
    expect((failure as CeleryTsError).retryable).toBe(false);
    expect((failure as Error).message).toMatch(
      /could not send task tasks\.add\[.+\] to queue "celery" on the memory broker: /,
    );
    expect((failure as Error).cause).toBeInstanceOf(Error);
  });

  it("sends once with publishRetry: false", async () => {
    const broker = flaky(1, connectionLost);
    const client = createClient({ broker: broker.transport, publishRetry: false });
    await expect(client.task(add).delay(2, 3)).rejects.toMatchObject({ code: "CONNECTION" });
    expect(broker.attempts()).toBe(1);
  });

  it("takes a policy for one call over the client's", async () => {
    const broker = flaky(2, connectionLost);
    const client = createClient({ broker: broker.transport, publishRetry: false });
    await client.task(add).applyAsync([2, 3], { publishRetry: { ...quick, maxRetries: 2 } });
    expect(broker.attempts()).toBe(3);

    const once = flaky(1, connectionLost);
    const retrying = createClient({ broker: once.transport, publishRetry: quick });
    await expect(retrying.sendTask("tasks.add", { publishRetry: false })).rejects.toMatchObject({
      code: "CONNECTION",
    });
    expect(once.attempts()).toBe(1);
  });
});
