import { IgnoreTask, RejectTask, currentTask, defineTask } from "@celery-ts/core";
import { expect, it, type TestContext } from "vitest";
import type { WorkerSuiteContext } from "./worker-context.ts";
import { sleep as pause } from "@celery-ts/core/driver";

function requireDeadLetters(ctx: WorkerSuiteContext, test: TestContext): void {
  if (!ctx.producer().capabilities.deadLetter) {
    test.skip("capabilities.deadLetter is false: rejected messages are dropped, not kept");
  }
}

const deadReasons = async (ctx: WorkerSuiteContext): Promise<string[]> =>
  ((await ctx.producer().deadLetters?.(ctx.queue())) ?? []).map((d) => d.reason).sort();

/** How the worker settles messages: acknowledgement, dead letters, shutdown, leases. */
export function workerDeliveryTests(ctx: WorkerSuiteContext): void {
  onceTests(ctx);
  badMessageTests(ctx);
  rejectionTests(ctx);
  shutdownTests(ctx);
}

function onceTests(ctx: WorkerSuiteContext): void {
  it("runs a task once: an acknowledged message does not come back to the next worker", async () => {
    let runs = 0;
    const count = defineTask("t.count", () => ++runs);
    const f = await ctx.start([count]);
    const id = await f.send({ task: "t.count" });
    expect((await f.wait(id)).result).toBe(1);
    await f.worker.stop();
    // The worker does not close a broker it was given; closing hands back what it still holds.
    await f.broker.close();
    await ctx.start([count]);
    await pause(ctx.absenceMs());
    expect(runs).toBe(1);
  });

  it("runs a task that stores no result once: its acknowledged message does not come back", async () => {
    // With no result stored, the next worker cannot tell a message that came back from a new one
    // (it skips only a redelivered task whose result is ready): the ack alone keeps it to one run.
    let runs = 0;
    let finished = false;
    const quiet = defineTask(
      "t.quiet",
      () => {
        runs++;
        finished = true;
      },
      { ignoreResult: true },
    );
    const f = await ctx.start([quiet]);
    await f.send({ task: "t.quiet" });
    await ctx.until(() => finished, "the task ran");
    // Stopping waits for the running task and its acknowledgement.
    await f.worker.stop();
    // The worker does not close a broker it was given; closing hands back what it still holds.
    await f.broker.close();
    await ctx.start([quiet]);
    await pause(ctx.absenceMs());
    expect(runs).toBe(1);
  });

  it("runs a task longer than the redelivery window once, with a second worker waiting", async () => {
    let runs = 0;
    const long = defineTask("t.long", async () => {
      runs++;
      // Longer than a lease: a lease that is not renewed runs out meanwhile.
      await pause(2 * ctx.absenceMs());
      return runs;
    });
    // The runner holds nothing else, so a copy that comes back goes to the worker waiting (a
    // copy taken by the runner itself would wait for its run and be skipped as a duplicate).
    const f = await ctx.start([long], { concurrency: 1, prefetch: 1 });
    await ctx.start([long]);
    const id = await f.send({ task: "t.long" });
    expect(
      (
        await ctx
          .backend()
          .waitFor(id, { timeout: (3 * ctx.absenceMs() + ctx.presenceMs()) / 1000 })
      ).status,
    ).toBe("SUCCESS");
    await pause(ctx.absenceMs());
    expect(runs).toBe(1);
  });
}

function rejectionTests(ctx: WorkerSuiteContext): void {
  it("dead-letters a task that raises Reject, with its reason", async (test) => {
    requireDeadLetters(ctx, test);
    const reject = defineTask("t.reject", () => {
      throw new RejectTask("not for us");
    });
    const f = await ctx.start([reject]);
    await f.send({ task: "t.reject" });
    await ctx.until(async () => (await deadReasons(ctx)).length >= 1, "a dead letter");
    await pause(ctx.absenceMs());
    expect(await deadReasons(ctx)).toEqual(["not for us"]);
  });

  it("stores nothing for a task that raises Reject or Ignore", async () => {
    const reject = defineTask("t.reject", () => {
      throw new RejectTask("not for us");
    });
    let ignoredRan = false;
    const ignore = defineTask("t.ignore", () => {
      ignoredRan = true;
      throw new IgnoreTask();
    });
    const f = await ctx.start([reject, ignore]);
    const rejected = await f.send({ task: "t.reject" });
    const ignored = await f.send({ task: "t.ignore" });
    await ctx.until(() => ignoredRan, "the ignored task ran");
    await pause(ctx.absenceMs());
    expect(await ctx.backend().get(rejected)).toBeUndefined();
    expect(await ctx.backend().get(ignored)).toBeUndefined();
  });
}

function badMessageTests(ctx: WorkerSuiteContext): void {
  it("goes on past an unknown task and a malformed message", async () => {
    const f = await ctx.start([defineTask("t.ok", () => "ok")]);
    await f.send({ task: "t.nobody-knows" });
    await ctx.harness.injectRaw(ctx.queue(), "garbage");
    expect((await f.wait(await f.send({ task: "t.ok" }))).result).toBe("ok");
  });

  it("dead-letters an unknown task and a malformed message with the reason", async (test) => {
    requireDeadLetters(ctx, test);
    const f = await ctx.start([defineTask("t.ok", () => "ok")]);
    await f.send({ task: "t.nobody-knows" });
    await ctx.harness.injectRaw(ctx.queue(), "garbage");
    await ctx.until(async () => (await deadReasons(ctx)).length >= 2, "two dead letters");
    const reasons = await deadReasons(ctx);
    expect(reasons).toHaveLength(2);
    const unknown = reasons.filter((reason) => /unknown task "t.nobody-knows"/.test(reason));
    expect(unknown).toEqual([expect.stringMatching(/this worker registers t.ok/)]);
    // The malformed message's reason is the decoding error, in the transport's words.
    expect(reasons.find((reason) => !unknown.includes(reason))).toMatch(/\w/);
  });
}

function shutdownTests(ctx: WorkerSuiteContext): void {
  it("lets running tasks finish on stop and returns waiting messages to the broker", async () => {
    const started: string[] = [];
    const slow = defineTask("t.slow", async (label: string) => {
      started.push(label);
      await pause(300); // the task's work
      return label;
    });
    const f = await ctx.start([slow], { concurrency: 1, prefetch: 2 });
    const first = await f.send({ task: "t.slow", args: ["first"] });
    const second = await f.send({ task: "t.slow", args: ["second"] });
    await ctx.until(() => started.length > 0, "the first task started");
    await f.worker.stop();
    expect((await ctx.backend().get(first))?.result).toBe("first");
    expect(await ctx.backend().get(second)).toBeUndefined();
    const next = await ctx.start([slow]);
    expect((await next.wait(second)).result).toBe("second");
  });

  it("requeues a task still running after the shutdown timeout", async () => {
    let started = false;
    let aborted = false;
    const stuck = defineTask("t.stuck", async () => {
      started = true;
      const { signal } = currentTask();
      await new Promise((resolve) => signal.addEventListener("abort", resolve));
      aborted = true;
      return "abandoned";
    });
    const f = await ctx.start([stuck], { shutdownTimeout: 0.2 });
    const id = await f.send({ task: "t.stuck" });
    await ctx.until(() => started, "the task started");
    await f.worker.stop();
    expect(aborted).toBe(true);
    expect(await ctx.backend().get(id)).toBeUndefined();
    const next = await ctx.start([defineTask("t.stuck", () => "ran again")]);
    expect((await next.wait(id)).result).toBe("ran again");
  });
}
