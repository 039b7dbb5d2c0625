import { createSignals, declareTask } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { setup } from "./support.ts";

describe("publish signals", () => {
  it("lets beforeTaskPublish add a header that is sent, then sends afterTaskPublish", async () => {
    const signals = createSignals();
    const seen: string[] = [];
    signals.connect("beforeTaskPublish", ({ task, queue, headers }) => {
      seen.push(`before ${task} ${queue}`);
      headers["x-trace"] = "abc";
    });
    signals.connect("afterTaskPublish", ({ id }) => void seen.push(`after ${id}`));
    const { client, next } = setup({ signals });
    const result = await client.task(declareTask<[number], number>("s.task")).delay(1);
    const queued = next("celery");
    expect(queued.message.headers["x-trace"]).toBe("abc");
    expect(seen).toEqual(["before s.task celery", `after ${result.id}`]);
  });

  it("logs a listener that throws and sends the task all the same", async () => {
    const signals = createSignals();
    signals.connect("beforeTaskPublish", () => {
      throw new Error("listener broke");
    });
    const errors: string[] = [];
    const noop = (): void => {};
    const logger = {
      debug: noop,
      info: noop,
      warn: noop,
      error: (msg: string) => void errors.push(msg),
    };
    const { client, next } = setup({ signals, logger });
    await client.sendTask("s.other", { args: [1] });
    expect(next("celery").message.args).toEqual([1]);
    expect(errors).toEqual([
      'a "beforeTaskPublish" signal listener threw; the task is sent all the same',
    ]);
  });
});
