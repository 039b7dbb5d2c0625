import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import {
  EVENT_EXCHANGE,
  adjustClock,
  clockValue,
  createEventPublisher,
  encodeJson,
  jsonWireMessage,
  receiveEvents,
  resolveBroadcast,
  utcOffsetHours,
  type Broadcast,
  type CeleryEvent,
} from "../src/index.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A broadcast on an in-process broker, and what a raw subscriber to `#` hears: routing key and body. */
async function listen(): Promise<{
  broadcast: Broadcast;
  raw: { routingKey: string; body: unknown }[];
  events: CeleryEvent[];
}> {
  const broadcast = await resolveBroadcast(`memory://events-${randomUUID()}`);
  const raw: { routingKey: string; body: unknown }[] = [];
  const events: CeleryEvent[] = [];
  const rawSub = await broadcast.subscribe(
    EVENT_EXCHANGE,
    { name: `raw-${randomUUID()}` },
    "#",
    ({ message, routingKey }) => raw.push({ routingKey, body: JSON.parse(message.body) }),
  );
  const sub = await receiveEvents(broadcast, (event) => events.push(event));
  cleanups.push(
    () => broadcast.close(),
    () => rawSub.close(),
    () => sub.close(),
  );
  return { broadcast, raw, events };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("event publisher", () => {
  it("sends the buffered group's events of one turn as one task.multi list, others at once", async () => {
    const { broadcast, raw, events } = await listen();
    const publisher = createEventPublisher(broadcast, {
      hostname: "w@test",
      bufferGroups: ["task"],
      bufferLimit: 4,
    });
    // Six task events in one turn: a full batch of 4 goes at once, the other 2 on the next turn.
    const sent = [1, 2, 3, 4, 5, 6].map((n) => publisher.send("task-started", { uuid: `t${n}` }));
    await publisher.send("worker-heartbeat", { freq: 2 });
    await Promise.all(sent);
    await until(() => events.length === 7, "7 events");
    expect(raw.map((r) => r.routingKey).sort()).toEqual([
      "task.multi",
      "task.multi",
      "worker.heartbeat",
    ]);
    const batches = raw.filter((r) => r.routingKey === "task.multi").map((r) => r.body);
    expect(batches.map((b) => (b as unknown[]).length).sort()).toEqual([2, 4]);
    const tasks = events.filter((e) => e.type === "task-started");
    expect(tasks.map((e) => e.uuid).sort()).toEqual(["t1", "t2", "t3", "t4", "t5", "t6"]);
    // Each event keeps its own clock and timestamp; the clocks rise in the order of sending.
    const clocks = tasks.map((e) => e.clock as number);
    expect(new Set(clocks).size).toBe(6);
    expect(tasks[0]).toMatchObject({
      hostname: "w@test",
      pid: process.pid,
      timestamp: expect.any(Number),
    });
  });

  it("sends a lone buffered event as itself, and flush() sends what waits", async () => {
    const { broadcast, raw } = await listen();
    const publisher = createEventPublisher(broadcast, {
      hostname: "w@test",
      bufferGroups: ["task"],
    });
    void publisher.send("task-received", { uuid: "a" });
    await publisher.flush();
    await until(() => raw.length === 1, "the event");
    expect(raw[0]).toMatchObject({
      routingKey: "task.received",
      body: { type: "task-received", uuid: "a" },
    });
  });
});

describe("event JSON", () => {
  /** The text of every message on the event exchange. */
  async function rawTexts(): Promise<{ broadcast: Broadcast; texts: string[]; keys: string[] }> {
    const broadcast = await resolveBroadcast(`memory://events-${randomUUID()}`);
    const texts: string[] = [];
    const keys: string[] = [];
    const sub = await broadcast.subscribe(
      EVENT_EXCHANGE,
      { name: `raw-${randomUUID()}` },
      "#",
      ({ message, routingKey }) => {
        texts.push(message.body);
        keys.push(routingKey);
      },
    );
    cleanups.push(
      () => broadcast.close(),
      () => sub.close(),
    );
    return { broadcast, texts, keys };
  }

  /** What encodeJson writes for the event object as Celery builds it, with the sent clock and time. */
  function expected(type: string, fields: Record<string, unknown>, sent: unknown): string {
    const { clock, timestamp } = sent as { clock: number; timestamp: number };
    return encodeJson({
      hostname: "wörker@test",
      utcoffset: utcOffsetHours(),
      pid: process.pid,
      clock,
      ...fields,
      timestamp,
      type,
    });
  }

  it("writes each event byte for byte as encodeJson writes the event object, alone or in a list", async () => {
    const { broadcast, texts } = await rawTexts();
    const publisher = createEventPublisher(broadcast, {
      hostname: "wörker@test",
      bufferGroups: ["task"],
    });
    const sent: [string, Record<string, unknown>][] = [
      [
        "task-received",
        { uuid: "a", name: "t", args: "('é', \"q\\\n\u0001\")", eta: null, retries: 0 },
      ],
      // task-started repeats the head's pid; other head fields given by the caller win, in place.
      ["task-started", { uuid: "a", pid: process.pid }],
      ["task-started", { uuid: "b", pid: 1 }],
      ["task-succeeded", { uuid: "a", result: "None", runtime: 0.25, gone: undefined }],
      ["task-failed", { type: "ignored", uuid: "c", nested: { list: [1, "ü"], ok: true } }],
      ["task-custom", { toString: "x", hostname: "other", timestamp: 5, clock: 3 }],
    ];
    for (const [type, fields] of sent) void publisher.send(type, fields);
    await publisher.flush();
    await publisher.send("worker-heartbeat", { freq: 2, active: 0 });
    await until(() => texts.length === 2, "the batch and the heartbeat");
    const batch = texts.find((t) => t.startsWith("["))!;
    const events = JSON.parse(batch) as unknown[];
    expect(batch).toBe(
      encodeJson(sent.map(([type, fields], i) => JSON.parse(expected(type, fields, events[i])))),
    );
    events.forEach((event, i) => expect(encodeJson(event)).toBe(expected(...sent[i]!, event)));
    const heartbeat = texts.find((t) => !t.startsWith("["))!;
    expect(heartbeat).toBe(
      expected("worker-heartbeat", { freq: 2, active: 0 }, JSON.parse(heartbeat)),
    );
  });

  it("writes long, escaped and big values as encodeJson does, batch after batch", async () => {
    const { broadcast, texts } = await rawTexts();
    const publisher = createEventPublisher(broadcast, {
      hostname: "wörker@test",
      bufferGroups: ["task"],
    });
    const big = "x".repeat(200_000);
    const sent: [string, Record<string, unknown>][][] = [
      [
        ["task-received", { uuid: "a", args: "y".repeat(65), kwargs: "{'k': '\u007f\u007f'}" }],
        ["task-received", { uuid: "b", args: `${"z".repeat(70)}"\u2028`, retries: 12345678901 }],
        ["task-succeeded", { uuid: "b", result: big, runtime: 1e-7, flag: false }],
      ],
      [["task-started", { uuid: "c", pid: process.pid }]],
      [
        ["task-started", { uuid: "d", pid: process.pid }],
        ["task-succeeded", { uuid: "d", result: "\u007f", runtime: 2 }],
      ],
    ];
    for (const batch of sent) {
      for (const [type, fields] of batch) void publisher.send(type, fields);
      await publisher.flush();
    }
    await until(() => texts.length === sent.length, "the batches");
    sent.forEach((batch, b) => {
      const text = texts[b]!;
      const events = (batch.length === 1 ? [JSON.parse(text)] : JSON.parse(text)) as unknown[];
      const each = batch.map(([type, fields], i) => expected(type, fields, events[i]));
      expect(text).toBe(batch.length === 1 ? each[0] : `[${each.join(", ")}]`);
    });
  });

  it("writes a task event (sendTask) as the event object with its uuid first", async () => {
    const { broadcast, texts } = await rawTexts();
    const publisher = createEventPublisher(broadcast, { hostname: "wörker@test" });
    const sent: [string, Record<string, unknown>][] = [
      ["task-received", { name: "t", args: "(1,)", retries: 0, eta: null }],
      ["task-started", { pid: process.pid }],
      ["task-succeeded", { result: "'ü'", runtime: 0.5 }],
      // A uuid among the fields keeps its place first, with the fields' value, as a spread does.
      ["task-failed", { exception: "E()", uuid: "other" }],
      ["task-revoked", { hostname: "elsewhere" }],
    ];
    for (const [type, fields] of sent) await publisher.sendTask(type, "id-1", fields);
    await until(() => texts.length === sent.length, "the events");
    texts.forEach((text, i) => {
      const [type, fields] = sent[i]!;
      expect(text).toBe(expected(type, { uuid: "id-1", ...fields }, JSON.parse(text)));
    });
  });

  it("reports an event it cannot encode and still sends the others of its batch", async () => {
    const { broadcast, texts, keys } = await rawTexts();
    const errors: string[] = [];
    const publisher = createEventPublisher(broadcast, {
      hostname: "w@test",
      bufferGroups: ["task"],
      onError: (error, type) => errors.push(`${type}: ${String(error)}`),
    });
    void publisher.send("task-started", { uuid: "a" });
    void publisher.send("task-succeeded", { uuid: "a", runtime: Number.NaN });
    void publisher.send("task-started", { uuid: "b" });
    await publisher.flush();
    await until(() => texts.length === 1, "the batch");
    expect((JSON.parse(texts[0]!) as { uuid: string }[]).map((e) => e.uuid)).toEqual(["a", "b"]);
    expect(errors).toEqual([
      expect.stringMatching(/^task-succeeded: .*NaN cannot be sent as JSON/),
    ]);
    // A batch whose first event failed: the one event that went goes as itself, on its own key.
    void publisher.send("task-failed", { uuid: "c", exception: () => 1 });
    void publisher.send("task-started", { uuid: "d" });
    await publisher.flush();
    await until(() => texts.length === 2, "the lone event");
    expect(keys).toEqual(["task.multi", "task.started"]);
    expect(JSON.parse(texts[1]!)).toMatchObject({ type: "task-started", uuid: "d" });
    expect(errors).toHaveLength(2);
  });
});

describe("Lamport clock", () => {
  it("moves past the clock of what is received, except a client's task-sent", async () => {
    const { broadcast, events } = await listen();
    const ahead = clockValue() + 1000;
    await broadcast.publish(
      EVENT_EXCHANGE,
      "worker.heartbeat",
      jsonWireMessage(
        { type: "worker-heartbeat", hostname: "far@away", clock: ahead, timestamp: 1 },
        {},
      ),
    );
    await until(() => events.length === 1, "the heartbeat");
    expect(clockValue()).toBe(ahead + 1);
    await broadcast.publish(
      EVENT_EXCHANGE,
      "task.sent",
      jsonWireMessage(
        { type: "task-sent", hostname: "gen1@x", clock: ahead + 5000, timestamp: 1 },
        {},
      ),
    );
    await until(() => events.length === 2, "the task-sent");
    expect(clockValue()).toBe(ahead + 1);
    expect(adjustClock("9")).toBe(ahead + 2);
  });
});
