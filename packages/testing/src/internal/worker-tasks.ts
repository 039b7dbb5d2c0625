import {
  UnrecoverableError,
  currentTask,
  defineTask,
  createTaskMessage,
  encodeTaskMessage,
} from "@celery-ts/core";
import { expect, it } from "vitest";
import type { WorkerSuiteContext } from "./worker-context.ts";
import { sleep as pause } from "@celery-ts/core/driver";

class FlakyError extends Error {}

/** What a task sees and what the worker stores: results, failures, retries, limits, etas. */
export function workerTaskTests(ctx: WorkerSuiteContext): void {
  resultTests(ctx);
  retryAndLimitTests(ctx);
  etaAndConcurrencyTests(ctx);
  storedStateTests(ctx);
}

function resultTests(ctx: WorkerSuiteContext): void {
  it("runs a task and stores its result in Celery's layout", async () => {
    const f = await ctx.start([defineTask("t.add", (a: number, b: number) => a + b)]);
    const id = await f.send({ task: "t.add", args: [2, 3] });
    const meta = await f.wait(id);
    expect(meta).toMatchObject({
      status: "SUCCESS",
      result: 5,
      traceback: null,
      children: [],
      task_id: id,
    });
    expect(meta.date_done).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  });

  it("stores a failure with the error's type, message and traceback", async () => {
    const fail = defineTask("t.fail", () => {
      throw new TypeError("bad input");
    });
    const f = await ctx.start([fail]);
    const meta = await f.wait(await f.send({ task: "t.fail" }));
    expect(meta.status).toBe("FAILURE");
    expect(meta.result).toEqual({
      exc_type: "TypeError",
      exc_message: ["bad input"],
      exc_module: "builtins",
    });
    expect(meta.traceback).toMatch(/TypeError: bad input/);
  });

  it("gives the task its context: id, retries, kwargs", async () => {
    // A task reading its keyword arguments from the context declares that it takes them.
    const task = defineTask(
      "t.ctx",
      () => {
        const { id, retries, kwargs, name } = currentTask();
        return { id, retries, kwargs, name };
      },
      { params: ["**kwargs"] },
    );
    const f = await ctx.start([task]);
    const id = await f.send({ task: "t.ctx", kwargs: { b: 5 } });
    expect((await f.wait(id)).result).toEqual({ id, retries: 0, kwargs: { b: 5 }, name: "t.ctx" });
  });

  it("retries when the task asks, storing RETRY in between", async () => {
    const states: string[] = [];
    const flaky = defineTask("t.retry", async () => {
      const { retries, id } = currentTask();
      const status = async (): Promise<string> =>
        (await ctx.backend().get(id))?.status ?? "PENDING";
      // As in Celery, the retry is sent before RETRY is stored: a fast broker may deliver it
      // first. RETRY must be stored in between all the same.
      if (retries > 0) await ctx.until(async () => (await status()) === "RETRY", "RETRY stored");
      states.push(await status());
      if (retries < 2) currentTask().retry({ countdown: 0.05, error: new FlakyError("not yet") });
      return retries;
    });
    const f = await ctx.start([flaky]);
    const meta = await f.wait(await f.send({ task: "t.retry" }));
    expect(meta.result).toBe(2);
    expect(states).toEqual(["PENDING", "RETRY", "RETRY"]);
  });
}

function retryAndLimitTests(ctx: WorkerSuiteContext): void {
  it("retries listed errors automatically with backoff, then fails", async () => {
    let runs = 0;
    const flaky = defineTask(
      "t.auto",
      () => {
        runs++;
        throw new FlakyError(`attempt ${runs}`);
      },
      { autoRetryFor: [FlakyError], retry: { maxRetries: 2, delay: 0.05, jitter: false } },
    );
    const f = await ctx.start([flaky]);
    const started = Date.now();
    const meta = await f.wait(await f.send({ task: "t.auto" }));
    expect(runs).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150); // 50 ms then 100 ms
    expect(meta.status).toBe("FAILURE");
    expect(meta.result).toMatchObject({ exc_message: ["attempt 3"] });
  });

  it("does not retry an UnrecoverableError", async () => {
    let runs = 0;
    const task = defineTask(
      "t.unrecoverable",
      () => {
        runs++;
        throw new UnrecoverableError("give up");
      },
      { autoRetryFor: () => true },
    );
    const f = await ctx.start([task]);
    expect((await f.wait(await f.send({ task: "t.unrecoverable" }))).status).toBe("FAILURE");
    expect(runs).toBe(1);
  });

  it("aborts the task's signal at the soft time limit", async () => {
    const slow = defineTask(
      "t.soft",
      async () => {
        const { signal } = currentTask();
        await new Promise((resolve) => signal.addEventListener("abort", resolve));
        return String((signal.reason as Error).name);
      },
      { timeLimit: { soft: 0.1 } },
    );
    const f = await ctx.start([slow]);
    expect((await f.wait(await f.send({ task: "t.soft" }))).result).toBe("SoftTimeLimitExceeded");
  });

  it("fails a task at its hard time limit, from the message header", async () => {
    const f = await ctx.start([defineTask("t.hard", () => new Promise(() => {}))]);
    const meta = await f.wait(await f.send({ task: "t.hard", timeLimit: [0.1, null] }));
    expect(meta.status).toBe("FAILURE");
    expect(meta.result).toMatchObject({ exc_type: "TimeLimitExceeded" });
  });

  it("does not run an expired task and marks it REVOKED", async () => {
    let ran = false;
    const f = await ctx.start([defineTask("t.expired", () => void (ran = true))]);
    // Expired before it reaches the worker, as one that expired in the worker's prefetch. Sent
    // without the broker TTL the client adds (properties.expiration, 0 here): RabbitMQ drops a
    // message with TTL 0 unless a consumer can take it at that instant, which is the broker's
    // doing and a race; what is tested here is the worker's own check.
    const message = createTaskMessage({ task: "t.expired", expires: new Date(Date.now() - 1000) });
    const { expiration: _brokerTtl, ...properties } = message.properties;
    await ctx.producer().publish(encodeTaskMessage({ ...message, properties }), {
      queue: ctx.queue(),
    });
    const meta = await f.wait(message.headers.id);
    expect(meta.status).toBe("REVOKED");
    expect(meta.result).toMatchObject({ exc_type: "TaskRevokedError", exc_message: ["expired"] });
    expect(ran).toBe(false);
  });
}

function etaAndConcurrencyTests(ctx: WorkerSuiteContext): void {
  it("runs other work while a task waits for its eta", async () => {
    const done: string[] = [];
    const ranAt: Record<string, number> = {};
    const record = defineTask("t.record", (label: string) => {
      done.push(label);
      ranAt[label] = Date.now();
    });
    const f = await ctx.start([record], { concurrency: 1 });
    // An hour away: were the waiting task holding the only slot, "now" could not run at all
    // (no window of a few hundred ms that a loaded machine can miss). Sent together: a broker
    // whose first delayed publish is slow (AMQP declares its delay topology then) must not
    // hold up the message that is due now.
    const [, now] = await Promise.all([
      f.send({ task: "t.record", args: ["later"], eta: new Date(Date.now() + 3_600_000) }),
      f.send({ task: "t.record", args: ["now"] }),
    ]);
    await f.wait(now);
    expect(done).toEqual(["now"]);
    // A task whose eta comes runs then, never early; the one an hour away still waits.
    const eta = new Date(Date.now() + 600);
    await f.wait(await f.send({ task: "t.record", args: ["soon"], eta }));
    expect(ranAt.soon).toBeGreaterThanOrEqual(eta.getTime());
    expect(done).toEqual(["now", "soon"]);
  });

  it("holds a message whose eta is weeks away, even when the broker delivers it at once", async () => {
    let ran = false;
    const ok = defineTask("t.now", () => "now");
    const f = await ctx.start([defineTask("t.much_later", () => void (ran = true)), ok]);
    // As a Python producer on Redis sends it: the eta is only in the header, not in the broker.
    const message = createTaskMessage({
      task: "t.much_later",
      eta: new Date(Date.now() + 30 * 86_400_000),
    });
    await ctx.producer().publish(encodeTaskMessage(message), { queue: ctx.queue() });
    // Work sent after it runs: the held message does not block the worker.
    expect((await f.wait(await f.send({ task: "t.now" }))).result).toBe("now");
    await pause(ctx.absenceMs()); // the declared window: long enough for a wrong run to show
    expect(ran).toBe(false);
    expect(await ctx.backend().get(message.headers.id)).toBeUndefined();
  });

  it("lets due work pass messages it holds for their eta", async () => {
    const f = await ctx.start([defineTask("t.due", () => "done")], { concurrency: 1, prefetch: 1 });
    const eta = new Date(Date.now() + 60_000);
    for (let i = 0; i < 5; i++) {
      const early = createTaskMessage({ task: "t.due", eta });
      await ctx.producer().publish(encodeTaskMessage(early), { queue: ctx.queue() });
    }
    expect((await f.wait(await f.send({ task: "t.due" }))).result).toBe("done");
  });

  it("keeps to its concurrency", async () => {
    let now = 0;
    let peak = 0;
    const busy = defineTask("t.busy", async () => {
      peak = Math.max(peak, ++now);
      // Each task waits (a bounded while) for the worker to fill its slots.
      await ctx.until(() => now >= 3 || peak >= 3, "three tasks at once").catch(() => {});
      await pause(10);
      now--;
    });
    const f = await ctx.start([busy], { concurrency: 3 });
    const ids = await Promise.all(Array.from({ length: 12 }, () => f.send({ task: "t.busy" })));
    await Promise.all(ids.map((id) => f.wait(id)));
    expect(peak).toBe(3);
  });
}

function storedStateTests(ctx: WorkerSuiteContext): void {
  it("stores STARTED and progress states when asked", async () => {
    const seen: (string | undefined)[] = [];
    const task = defineTask(
      "t.progress",
      async () => {
        const { id, updateState } = currentTask();
        seen.push((await ctx.backend().get(id))?.status);
        await updateState("PROGRESS", { done: 1, total: 2 });
        seen.push((await ctx.backend().get(id))?.status);
        return "done";
      },
      { trackStarted: true },
    );
    const f = await ctx.start([task]);
    await f.wait(await f.send({ task: "t.progress" }));
    expect(seen).toEqual(["STARTED", "PROGRESS"]);
  });

  it("stores no result for ignoreResult tasks", async () => {
    let ran = false;
    const task = defineTask("t.quiet", () => ((ran = true), 1), { ignoreResult: true });
    const f = await ctx.start([task]);
    const id = await f.send({ task: "t.quiet" });
    await ctx.until(() => ran, "the task ran");
    await pause(ctx.absenceMs());
    expect(await ctx.backend().get(id)).toBeUndefined();
  });

  it("fails a task whose result cannot be stored as JSON", async () => {
    const task = defineTask("t.cycle", () => {
      const a: unknown[] = [];
      a.push(a);
      return a;
    });
    const f = await ctx.start([task]);
    const meta = await f.wait(await f.send({ task: "t.cycle" }));
    expect(meta.status).toBe("FAILURE");
    expect(meta.result).toMatchObject({ exc_message: [expect.stringMatching(/cycle/)] });
  });
}
