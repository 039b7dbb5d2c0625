import {
  RetryTask,
  createSignals,
  currentTask,
  declareTask,
  defineTask,
  isCeleryTsError,
} from "@celery-ts/core";
import { chain, chord, group, s } from "@celery-ts/client";
import { afterEach, describe, expect, it } from "vitest";
import { createTestClient, type TestClient } from "../src/testing.ts";

const add = defineTask("eager.add", (a: number, b: number) => a + b);
const describeMap = defineTask("eager.map", (value: unknown) => typeof value);
const returnsMap = defineTask("eager.returns_map", () => new Map([["a", 1]]));
const flaky = defineTask(
  "eager.flaky",
  () => {
    const { retries } = currentTask();
    if (retries < 2) throw new RetryTask({ countdown: 0 });
    return `after ${retries} retries`;
  },
  { retry: { maxRetries: 3 } },
);

const later = defineTask(
  "eager.later",
  () => {
    const { retries } = currentTask();
    if (retries < 1) throw new RetryTask({ countdown: 0.5 });
    return Date.now();
  },
  { retry: { maxRetries: 1 } },
);
const order: string[] = [];
const step = defineTask("eager.step", (seen: unknown, label: string) => {
  order.push(label);
  // What the previous step returned, as it came over the wire: a Date arrives as a string.
  return { label, seen, type: typeof seen };
});
const now = defineTask("eager.now", () => new Date(Date.UTC(2026, 0, 2)));
const total = defineTask("eager.total", (parts: number[]) => parts.reduce((a, b) => a + b, 0));

describe("createTestClient", () => {
  const clients: TestClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  const open = async (...args: Parameters<typeof createTestClient>) => {
    const client = await createTestClient(...args);
    clients.push(client);
    return client;
  };

  it("runs a task in-process: when delay() resolves the result is there", async () => {
    const app = await open({ tasks: [add] });
    const result = await app.task(add).delay(2, 3);
    expect(await result.status()).toBe("SUCCESS");
    expect(await result.get()).toBe(5);
  });

  it("runs retries too before the send resolves", async () => {
    const app = await open({ tasks: [flaky] });
    const result = await app.task(flaky).delay();
    expect(await result.get({ timeout: 0.01 })).toBe("after 2 retries");
  });

  it("refuses arguments the wire cannot carry, as a real send does", async () => {
    const app = await open({ tasks: [describeMap] });
    const sends = [new Map([["a", 1]]), () => 1, new Uint8Array(1)].map((value) =>
      app
        .task(describeMap)
        .delay(value)
        .then(
          () => "sent",
          (error: unknown) => (isCeleryTsError(error, "ENCODE") ? "ENCODE" : String(error)),
        ),
    );
    expect(await Promise.all(sends)).toEqual(["ENCODE", "ENCODE", "ENCODE"]);
    // Dates arrive as what a worker receives: ISO strings.
    expect(await (await app.task(describeMap).delay(new Date())).get()).toBe("string");
  });

  it("fails a task whose result the wire cannot carry, as a real worker does", async () => {
    const app = await open({ tasks: [returnsMap] });
    const result = await app.task(returnsMap).delay();
    expect(await result.status()).toBe("FAILURE");
    await expect(result.get()).rejects.toThrow(/a Map cannot be sent as JSON/);
  });

  it("refuses a task the test worker lacks and a queue it does not consume, naming the fix", async () => {
    const app = await open({ tasks: [add] });
    await expect(app.sendTask("eager.missing")).rejects.toThrow(
      /task eager.missing is not among the test worker's tasks.*createTestClient\(\{ tasks \}\)/,
    );
    await expect(app.task(add).applyAsync([1, 2], { queue: "other" })).rejects.toThrow(
      /queue "other", which the test worker does not consume \(celery\): pass queues/,
    );
  });

  it("consumes the queues the tasks declare", async () => {
    const routed = defineTask(
      declareTask<[], string>("eager.routed", { queue: "emails" }),
      () => "ok",
    );
    const app = await open({ tasks: [routed] });
    expect(await (await app.task(routed).delay()).get()).toBe("ok");
  });

  it("resolves at once for a task that expired before it ran (REVOKED)", async () => {
    // Without the taskRevoked signal it would wait out eagerTimeout (the test would time out).
    const app = await open({ tasks: [add], eagerTimeout: 600 });
    const result = await app.task(add).applyAsync([1, 2], { expires: new Date(Date.now() - 1000) });
    expect(await result.status()).toBe("REVOKED");
  });

  it("with eager: false, sends only queue; get() waits", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const waits = defineTask("eager.waits", async () => {
      await gate;
      return "done";
    });
    const app = await open({ tasks: [waits], eager: false });
    const result = await app.task(waits).delay();
    expect(await result.ready()).toBe(false);
    release();
    expect(await result.get({ timeout: 5 })).toBe("done");
  });

  it("calls hooks and the given signals", async () => {
    const signals = createSignals();
    const seen: string[] = [];
    signals.connect("beforeTaskPublish", ({ task }) => void seen.push(`publish ${task}`));
    signals.connect("taskSuccess", ({ result }) => void seen.push(`success ${String(result)}`));
    const hooked = defineTask("eager.hooked", () => 1, {
      onSuccess: (result) => void seen.push(`onSuccess ${result}`),
    });
    const app = await open({ tasks: [hooked], signals });
    await app.task(hooked).delay();
    expect(seen).toEqual(["publish eager.hooked", "onSuccess 1", "success 1"]);
  });

  it("waits a retry's countdown before the send resolves", async () => {
    const app = await open({ tasks: [later] });
    const sentAt = Date.now();
    const result = await app.task(later).delay();
    expect(await result.status()).toBe("SUCCESS");
    // The second run came no sooner than the countdown after the first.
    expect((await result.get({ timeout: 0.01 })) - sentAt).toBeGreaterThanOrEqual(500);
  });

  it("runs an eager chain step by step, each given the previous result as the wire carries it", async () => {
    order.length = 0;
    const app = await open({ tasks: [now, step] });
    const result = await app.applyAsync(chain(s(now), s(step, "second"), s(step, "third")));
    // Resolved once the last step ran: its result is there without waiting.
    expect(await result.ready()).toBe(true);
    expect(order).toEqual(["second", "third"]);
    expect(await result.get({ timeout: 0.01 })).toEqual({
      label: "third",
      seen: { label: "second", seen: "2026-01-02T00:00:00.000Z", type: "string" },
      type: "object",
    });
  });

  it("runs an eager chord: the body gets the header's results, once all of them ran", async () => {
    const app = await open({ tasks: [add, total] });
    const result = await app.applyAsync(
      chord([s(add, 1, 2), s(add, 3, 4), s(add, 5, 6)], s(total)),
    );
    expect(await result.ready()).toBe(true);
    expect(await result.get({ timeout: 0.01 })).toBe(21);
    const members = await app.applyAsync(group(s(add, 1, 1), s(add, 2, 2)));
    expect(await members.ready()).toBe(true);
  });

  it("ends an eager chain at a step the wire refuses: the send resolves, the chain failed", async () => {
    const app = await open({ tasks: [returnsMap, describeMap], eagerTimeout: 600 });
    const result = await app.applyAsync(chain(s(returnsMap), s(describeMap)));
    expect(await result.status()).toBe("FAILURE");
    await expect(result.get()).rejects.toThrow(/a Map cannot be sent as JSON/);
  });
});
