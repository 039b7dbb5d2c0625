import { createSignals, currentTask, defineTask } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { setups, useWorkers } from "./harness.ts";

/** A logger that keeps what it was told, to check what a throwing hook logs. */
function recordingLogger() {
  const errors: { msg: string; fields: Record<string, unknown> }[] = [];
  const noop = (): void => {};
  return {
    errors,
    logger: {
      debug: noop,
      info: noop,
      warn: noop,
      error: (msg: string, fields: Record<string, unknown> = {}) => errors.push({ msg, fields }),
    },
  };
}

describe.each(setups)("task hooks and signals on $name", ({ create }) => {
  const workers = useWorkers(create);
  const { start } = workers;

  it("calls onSuccess, afterReturn and the signals in Celery's order, after the result is stored", async () => {
    const calls: string[] = [];
    const signals = createSignals();
    signals.connect("taskPrerun", ({ task }) => void calls.push(`prerun ${task}`));
    signals.connect(
      "taskSuccess",
      ({ result }) => void calls.push(`success signal ${String(result)}`),
    );
    signals.connect("taskPostrun", ({ state }) => void calls.push(`postrun ${state}`));
    const add = defineTask("h.add", (a: number, b: number) => a + b, {
      onSuccess: async (result, info) => {
        const stored = await workers.setup().backend.get(info.id);
        calls.push(
          `onSuccess ${result} stored=${stored?.status} args=${JSON.stringify(info.args)}`,
        );
      },
      afterReturn: (state, result) => void calls.push(`afterReturn ${state} ${String(result)}`),
    });
    const f = await start([add], { signals });
    const meta = await f.wait(await f.send({ task: "h.add", args: [2, 3] }));
    expect(meta.result).toBe(5);
    await expect.poll(() => calls.length).toBe(5);
    expect(calls).toEqual([
      "prerun h.add",
      "onSuccess 5 stored=SUCCESS args=[2,3]",
      "success signal 5",
      "afterReturn SUCCESS 5",
      "postrun SUCCESS",
    ]);
  });

  it("calls onRetry for each retry and onFailure once retries run out", async () => {
    const calls: string[] = [];
    const signals = createSignals();
    signals.connect("taskRetry", ({ retries }) => void calls.push(`retry signal ${retries}`));
    signals.connect(
      "taskFailure",
      ({ error }) => void calls.push(`failure signal ${(error as Error).message}`),
    );
    const flaky = defineTask(
      "h.flaky",
      () => {
        throw new Error(`attempt ${currentTask().retries}`);
      },
      {
        autoRetryFor: () => true,
        retry: { maxRetries: 1, delay: 0.01, jitter: false },
        onRetry: (error, { retries }) =>
          void calls.push(`onRetry ${retries} ${(error as Error).message}`),
        onFailure: (error) => void calls.push(`onFailure ${(error as Error).message}`),
      },
    );
    const f = await start([flaky], { signals });
    expect((await f.wait(await f.send({ task: "h.flaky" }))).status).toBe("FAILURE");
    await expect.poll(() => calls.length).toBe(4);
    expect(calls).toEqual([
      "onRetry 0 attempt 0",
      "retry signal 0",
      "onFailure attempt 1",
      "failure signal attempt 1",
    ]);
  });

  it("logs a hook or listener that throws, and keeps the task's result and ack", async () => {
    const { errors, logger } = recordingLogger();
    const signals = createSignals();
    signals.connect("taskPrerun", () => {
      throw new Error("prerun listener broke");
    });
    signals.connect("taskPostrun", async () => {
      await Promise.resolve();
      throw new Error("postrun listener broke");
    });
    let postrunAfterBrokenOne = false;
    signals.connect("taskPostrun", () => void (postrunAfterBrokenOne = true));
    const task = defineTask("h.broken", () => "kept", {
      onSuccess: () => {
        throw new Error("onSuccess broke");
      },
      afterReturn: () => Promise.reject(new Error("afterReturn broke")),
    });
    const f = await start([task], { signals, logger });
    const id = await f.send({ task: "h.broken" });
    expect((await f.wait(id)).result).toBe("kept");
    await expect.poll(() => errors.length).toBe(4);
    expect(errors.map((e) => e.fields.error)).toEqual([
      "Error: prerun listener broke",
      "Error: onSuccess broke",
      "Error: afterReturn broke",
      "Error: postrun listener broke",
    ]);
    expect(errors[1]).toMatchObject({
      msg: expect.stringMatching(/^onSuccess threw/),
      fields: { id },
    });
    expect(postrunAfterBrokenOne).toBe(true);
    // Acknowledged: stopping the worker leaves nothing on the queue for the next one.
    await f.worker.stop();
    const again = await start([defineTask("h.broken", () => "ran twice")], {
      signals: createSignals(),
    });
    const probe = await again.send({ task: "h.broken" });
    await again.wait(probe);
    expect((await workers.setup().backend.get(id))?.result).toBe("kept");
  });

  it("sends workerReady once consuming and workerShutdown once stopped", async () => {
    const calls: string[] = [];
    const signals = createSignals();
    signals.connect(
      "workerReady",
      ({ hostname, queues }) => void calls.push(`ready ${hostname} ${queues.length}`),
    );
    signals.connect("workerShutdown", ({ hostname }) => void calls.push(`shutdown ${hostname}`));
    const f = await start([defineTask("h.noop", () => null)], { signals, hostname: "w1" });
    expect(calls).toEqual(["ready w1 1"]);
    await f.worker.stop();
    expect(calls).toEqual(["ready w1 1", "shutdown w1"]);
  });
});
