import {
  IgnoreTask,
  RejectTask,
  UnrecoverableError,
  createTaskMessage,
  currentTask,
  encodeTaskMessage,
  defineTask,
  type AnyTaskDefinition,
} from "@celery-ts/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type WorkerOptions } from "../src/index.ts";
import { Fixture, setups, sleep, type Setup } from "./harness.ts";

class FlakyError extends Error {}

describe.each(setups)("worker on $name", ({ create }) => {
  let setup: Setup;
  const fixtures: Fixture[] = [];
  beforeEach(async () => {
    setup = await create();
  });
  afterEach(async () => {
    await Promise.all(fixtures.splice(0).map((f) => f.worker.stop()));
    await setup.close();
  });
  const start = async (
    tasks: AnyTaskDefinition[],
    options: Partial<WorkerOptions> = {},
  ): Promise<Fixture> => {
    const fixture = new Fixture(setup, tasks, options);
    fixtures.push(fixture);
    await fixture.worker.start();
    return fixture;
  };

  it("runs a task and stores its result in Celery's layout", async () => {
    const add = defineTask("t.add", (a: number, b: number) => a + b);
    const f = await start([add]);
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
    const f = await start([fail]);
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
    const ctx = defineTask("t.ctx", () => {
      const { id, retries, kwargs, name } = currentTask();
      return { id, retries, kwargs, name };
    });
    const f = await start([ctx]);
    const id = await f.send({ task: "t.ctx", kwargs: { b: 5 } });
    expect((await f.wait(id)).result).toEqual({ id, retries: 0, kwargs: { b: 5 }, name: "t.ctx" });
  });

  it("retries when the task asks, storing RETRY in between", async () => {
    const states: string[] = [];
    const flaky = defineTask("t.retry", async () => {
      const { retries, id } = currentTask();
      states.push((await setup.backend.get(id))?.status ?? "PENDING");
      if (retries < 2) currentTask().retry({ countdown: 0.05, error: new FlakyError("not yet") });
      return retries;
    });
    const f = await start([flaky]);
    const meta = await f.wait(await f.send({ task: "t.retry" }));
    expect(meta.result).toBe(2);
    expect(states).toEqual(["PENDING", "RETRY", "RETRY"]);
  });

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
    const f = await start([flaky]);
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
    const f = await start([task]);
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
    const f = await start([slow]);
    expect((await f.wait(await f.send({ task: "t.soft" }))).result).toBe("SoftTimeLimitExceeded");
  });

  it("fails a task at its hard time limit, from the message header", async () => {
    const hang = defineTask("t.hard", () => new Promise(() => {}));
    const f = await start([hang]);
    const meta = await f.wait(await f.send({ task: "t.hard", timeLimit: [0.1, null] }));
    expect(meta.status).toBe("FAILURE");
    expect(meta.result).toMatchObject({ exc_type: "TimeLimitExceeded" });
  });

  it("does not run an expired task and marks it REVOKED", async () => {
    let ran = false;
    const task = defineTask("t.expired", () => {
      ran = true;
    });
    const f = await start([task]);
    const meta = await f.wait(
      await f.send({ task: "t.expired", expires: new Date(Date.now() - 1000) }),
    );
    expect(meta.status).toBe("REVOKED");
    expect(meta.result).toMatchObject({ exc_type: "TaskRevokedError", exc_message: ["expired"] });
    expect(ran).toBe(false);
  });

  it("runs other work while a task waits for its eta", async () => {
    const done: string[] = [];
    const record = defineTask("t.record", (label: string) => {
      done.push(label);
    });
    const f = await start([record], { concurrency: 1 });
    const eta = new Date(Date.now() + 600);
    const later = await f.send({ task: "t.record", args: ["later"], eta });
    const now = await f.send({ task: "t.record", args: ["now"] });
    await f.wait(now);
    expect(done).toEqual(["now"]);
    await f.wait(later);
    expect(Date.now()).toBeGreaterThanOrEqual(eta.getTime());
    expect(done).toEqual(["now", "later"]);
  });

  it("holds a message whose eta is weeks away, even when the broker delivers it at once", async () => {
    let ran = false;
    const later = defineTask("t.much_later", () => {
      ran = true;
    });
    const f = await start([later]);
    // As a Python producer on Redis sends it: the eta is only in the header, not in the broker.
    const message = createTaskMessage({
      task: "t.much_later",
      eta: new Date(Date.now() + 30 * 86_400_000),
    });
    await f.producer.publish(encodeTaskMessage(message), { queue: f.queue });
    await sleep(300);
    expect(ran).toBe(false);
    expect(await setup.backend.get(message.headers.id)).toBeUndefined();
  });

  it("lets due work pass messages it holds for their eta", async () => {
    const task = defineTask("t.due", () => "done");
    const f = await start([task], { concurrency: 1, prefetch: 1 });
    const eta = new Date(Date.now() + 60_000);
    for (let i = 0; i < 5; i++) {
      const early = createTaskMessage({ task: "t.due", eta });
      await f.producer.publish(encodeTaskMessage(early), { queue: f.queue });
    }
    expect((await f.wait(await f.send({ task: "t.due" }))).result).toBe("done");
  });

  it("keeps to its concurrency", async () => {
    let now = 0;
    let peak = 0;
    const busy = defineTask("t.busy", async () => {
      peak = Math.max(peak, ++now);
      await sleep(30);
      now--;
    });
    const f = await start([busy], { concurrency: 3 });
    const ids = await Promise.all(Array.from({ length: 12 }, () => f.send({ task: "t.busy" })));
    await Promise.all(ids.map((id) => f.wait(id)));
    expect(peak).toBe(3);
  });

  it("dead-letters an unknown task and a malformed message with the reason, and goes on", async () => {
    const ok = defineTask("t.ok", () => "ok");
    const f = await start([ok]);
    await f.send({ task: "t.nobody-knows" });
    await setup.injectRaw(f.queue, "garbage");
    expect((await f.wait(await f.send({ task: "t.ok" }))).result).toBe("ok");
    await sleep(100);
    const dead = await f.producer.deadLetters?.(f.queue);
    expect(dead?.map((d) => d.reason).sort()).toEqual([
      expect.stringMatching(/malformed message envelope/),
      expect.stringMatching(/unknown task "t.nobody-knows": this worker registers t.ok/),
    ]);
  });

  it("stores STARTED and progress states when asked", async () => {
    const seen: (string | undefined)[] = [];
    const task = defineTask(
      "t.progress",
      async () => {
        const { id, updateState } = currentTask();
        seen.push((await setup.backend.get(id))?.status);
        await updateState("PROGRESS", { done: 1, total: 2 });
        seen.push((await setup.backend.get(id))?.status);
        return "done";
      },
      { trackStarted: true },
    );
    const f = await start([task]);
    await f.wait(await f.send({ task: "t.progress" }));
    expect(seen).toEqual(["STARTED", "PROGRESS"]);
  });

  it("honours Reject and Ignore signals", async () => {
    const reject = defineTask("t.reject", () => {
      throw new RejectTask("not for us");
    });
    const ignore = defineTask("t.ignore", () => {
      throw new IgnoreTask();
    });
    const f = await start([reject, ignore]);
    const rejected = await f.send({ task: "t.reject" });
    const ignored = await f.send({ task: "t.ignore" });
    await sleep(200);
    expect(await setup.backend.get(rejected)).toBeUndefined();
    expect(await setup.backend.get(ignored)).toBeUndefined();
    expect((await f.producer.deadLetters?.(f.queue))?.map((d) => d.reason)).toEqual(["not for us"]);
  });

  it("stores no result for ignoreResult tasks", async () => {
    let ran = false;
    const task = defineTask(
      "t.quiet",
      () => {
        ran = true;
        return 1;
      },
      { ignoreResult: true },
    );
    const f = await start([task]);
    const id = await f.send({ task: "t.quiet" });
    while (!ran) await sleep(10);
    await sleep(50);
    expect(await setup.backend.get(id)).toBeUndefined();
  });

  it("fails a task whose result cannot be stored as JSON", async () => {
    const task = defineTask("t.cycle", () => {
      const a: unknown[] = [];
      a.push(a);
      return a;
    });
    const f = await start([task]);
    const meta = await f.wait(await f.send({ task: "t.cycle" }));
    expect(meta.status).toBe("FAILURE");
    expect(meta.result).toMatchObject({ exc_message: [expect.stringMatching(/cycle/)] });
  });

  it("lets running tasks finish on stop and returns waiting messages to the broker", async () => {
    const slow = defineTask("t.slow", async (label: string) => {
      await sleep(300);
      return label;
    });
    const f = await start([slow], { concurrency: 1, prefetch: 2 });
    const first = await f.send({ task: "t.slow", args: ["first"] });
    const second = await f.send({ task: "t.slow", args: ["second"] });
    await sleep(100);
    await f.worker.stop();
    expect((await setup.backend.get(first))?.result).toBe("first");
    expect(await setup.backend.get(second)).toBeUndefined();
    const next = await start([slow]);
    expect((await next.wait(second)).result).toBe("second");
  });

  it("requeues a task still running after the shutdown timeout", async () => {
    let aborted = false;
    const stuck = defineTask("t.stuck", async () => {
      const { signal } = currentTask();
      await new Promise((resolve) => signal.addEventListener("abort", resolve));
      aborted = true;
      return "abandoned";
    });
    const f = await start([stuck], { shutdownTimeout: 0.2 });
    const id = await f.send({ task: "t.stuck" });
    await sleep(100);
    await f.worker.stop();
    expect(aborted).toBe(true);
    expect(await setup.backend.get(id)).toBeUndefined();
    const quick = defineTask("t.stuck", () => "ran again");
    const next = await start([quick]);
    expect((await next.wait(id)).result).toBe("ran again");
  });
});
