import { randomUUID } from "node:crypto";
import { createClient } from "@celery-ts/client";
import {
  defineTask,
  receiveEvents,
  resolveBroadcast,
  type CeleryEvent,
  type Logger,
} from "@celery-ts/core";
import { createWorker } from "../src/index.ts";
import { afterEach, describe, expect, it } from "vitest";
import { Fixture, setups, type Setup } from "./harness.ts";

describe("the shadow header", () => {
  let setup: Setup | undefined;
  let fixture: Fixture | undefined;
  afterEach(async () => {
    await fixture?.worker.stop();
    await setup?.close();
  });

  it("names the task in the worker's log lines, as Celery does, beside its registered name", async () => {
    const lines: { message: string; fields: Record<string, unknown> }[] = [];
    const record = (message: string, fields: Record<string, unknown> = {}) =>
      void lines.push({ message, fields });
    const logger: Logger = { debug: record, info: record, warn: record, error: record };
    setup = await setups[0]!.create();
    fixture = new Fixture(setup, [defineTask("t.generic", () => "ok")], { logger });
    await fixture.worker.start();
    const id = await fixture.send({ task: "t.generic", shadow: "reports.monthly" });
    await fixture.wait(id);
    const started = lines.find((line) => line.message === "task started" && line.fields.id === id);
    expect(started?.fields).toMatchObject({ task: "reports.monthly", registered: "t.generic" });
  });

  it("names the task in its task-received event, as Celery's request name does", async () => {
    const url = `memory://shadow-${randomUUID()}`;
    const events: CeleryEvent[] = [];
    const listener = await resolveBroadcast(url);
    const subscription = await receiveEvents(listener, (event) => events.push(event));
    const worker = createWorker({
      broker: url,
      backend: url,
      tasks: [defineTask("t.generic", () => "ok")],
      taskEvents: true,
    });
    const client = createClient({ broker: url, backend: url });
    try {
      await worker.start();
      const result = await client.sendTask("t.generic", { shadow: "reports.monthly" });
      await result.get({ timeout: 10 });
      const received = await new Promise<CeleryEvent | undefined>((resolve) => {
        const deadline = Date.now() + 10_000;
        const look = (): void => {
          const found = events.find((e) => e.type === "task-received" && e.uuid === result.id);
          if (found || Date.now() > deadline) resolve(found);
          else setTimeout(look, 10);
        };
        look();
      });
      expect(received).toMatchObject({ name: "reports.monthly" });
    } finally {
      await worker.stop();
      await client.close();
      await subscription.close();
      await listener.close();
    }
  });
});
