import { randomUUID } from "node:crypto";
import { currentTask, defineTask } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { setups, sleep, useWorkers } from "./harness.ts";

// What Celery 5.2.6 stores, checked against a real Python prefork worker: TimeLimitExceeded(1)
// and SoftTimeLimitExceeded() from billiard.exceptions; NotRegistered(name),
// MaxRetriesExceededError("Can't retry ...") from celery.exceptions.
describe.each(setups)("Celery's exceptions stored by the worker on $name", ({ create }) => {
  const workers = useWorkers(create);
  const { start } = workers;

  it("stores time limits as billiard's classes with Celery's arguments", async () => {
    const slow = defineTask("t.slow", () => new Promise<never>(() => undefined));
    const soft = defineTask("t.soft", () => {
      const { signal } = currentTask();
      return new Promise<never>((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason as Error)),
      );
    });
    const f = await start([slow, soft]);
    const hard = await f.wait(await f.send({ task: "t.slow", timeLimit: [0.2, null] }));
    expect(hard.result).toEqual({
      exc_type: "TimeLimitExceeded",
      exc_message: [0.2],
      exc_module: "billiard.exceptions",
    });
    const softMeta = await f.wait(await f.send({ task: "t.soft", timeLimit: [null, 0.1] }));
    expect(softMeta.result).toEqual({
      exc_type: "SoftTimeLimitExceeded",
      exc_message: [],
      exc_module: "billiard.exceptions",
    });
  });

  it("stores NotRegistered for an unknown task, then dead-letters it", async () => {
    const f = await start([defineTask("t.ok", () => "ok")]);
    const meta = await f.wait(await f.send({ task: "t.nobody-knows" }));
    expect(meta).toMatchObject({
      status: "FAILURE",
      result: {
        exc_type: "NotRegistered",
        exc_message: ["t.nobody-knows"],
        exc_module: "celery.exceptions",
      },
    });
  });

  it("stores MaxRetriesExceededError when a retry without an error runs out", async () => {
    const again = defineTask("t.again", () => currentTask().retry({ countdown: 0 }), {
      retry: { maxRetries: 0 },
    });
    const f = await start([again]);
    const id = await f.send({ task: "t.again" });
    expect((await f.wait(id)).result).toEqual({
      exc_type: "MaxRetriesExceededError",
      exc_message: [`Can't retry t.again[${id}] args:() kwargs:{}`],
      exc_module: "celery.exceptions",
    });
  });

  it("refuses a compressed or undecodable message: FAILURE with the reason, dead-lettered", async () => {
    const f = await start([defineTask("t.ok", () => "ok")]);
    const compressed = await f.send({
      task: "t.ok",
      headers: { compression: "application/x-gzip" },
    });
    expect((await f.wait(compressed)).result).toMatchObject({
      exc_type: "InvalidTaskError",
      exc_message: [expect.stringMatching(/compressed .*turn off task_compression/)],
      exc_module: "celery.exceptions",
    });
    const id = randomUUID();
    await f.producer.publish(
      {
        body: "[[1], {}",
        contentType: "application/json",
        contentEncoding: "utf-8",
        headers: { task: "t.ok", id },
        properties: { correlation_id: id },
      },
      { queue: f.queue },
    );
    expect((await f.wait(id)).result).toMatchObject({
      exc_type: "InvalidTaskError",
      exc_message: [expect.stringMatching(/body is not valid JSON/)],
    });
    // Dead-lettered after the FAILURE is stored: wait for it, a bounded while.
    const deadline = Date.now() + 5_000;
    let dead = (await f.producer.deadLetters?.(f.queue)) ?? [];
    while (dead.length < 2 && Date.now() < deadline) {
      await sleep(20);
      dead = (await f.producer.deadLetters?.(f.queue)) ?? [];
    }
    if (f.producer.deadLetters) expect(dead).toHaveLength(2);
  });
});
