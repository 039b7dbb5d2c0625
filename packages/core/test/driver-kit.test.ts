import { describe, expect, it } from "vitest";
import {
  backoffDelay,
  bindingMatches,
  deadLetterCountLimit,
  closedError,
  createConnectionEvents,
  createConsumerKit,
  deliverBroadcast,
  durationOption,
  networkErrorCode,
  registerDriver,
  sleep,
  withDeadLetters,
  type DriverPrimitives,
  type MessageSource,
  type TakeBatch,
} from "../src/driver.ts";
import {
  CeleryTsError,
  createMemoryTransport,
  createTaskMessage,
  encodeEnvelope,
  encodeTaskMessage,
  isCeleryTsError,
  MemoryBroker,
  resolveTransport,
  silentLogger,
  type Delivery,
  type Transport,
} from "../src/index.ts";
import { memoryPrimitives } from "../src/memory-transport.ts";

type Handle = Parameters<ReturnType<typeof memoryPrimitives>["ack"]>[0];

const message = (n: number) =>
  encodeTaskMessage(createTaskMessage({ id: `task-${n}`, task: "t", args: [n] }));

/** Resolves once `check` holds, polling; fails after `ms`. */
async function until(check: () => boolean, ms = 10_000, what = "the condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A transport on the kit over a memory broker, with primitives the test may override. */
function kitTransport(
  broker: MemoryBroker,
  override: Partial<DriverPrimitives<Handle>> = {},
  options: { visibilityTimeout?: number; batchWhenBusy?: boolean } = {},
) {
  const kit = createConsumerKit<Handle>({
    pkg: "test",
    what: "test transport",
    primitives: { ...memoryPrimitives(broker), ...override },
    ...options,
  });
  return kit;
}

function consumer(transport: Pick<Transport, "consume">, queues: string[], prefetch = 10) {
  const deliveries: Delivery[] = [];
  const abort = new AbortController();
  const options = { prefetch, signal: abort.signal };
  const done = transport.consume(queues, (d) => deliveries.push(d), options);
  return { deliveries, abort, options, done };
}

async function publish(transport: Transport, queue: string, count: number): Promise<void> {
  for (let n = 0; n < count; n++) await transport.publish(message(n), { queue });
}

describe("the driver kit: settling", () => {
  it("settles a delivery once: a second ack or a reject after it does nothing", async () => {
    const transport = createMemoryTransport();
    await publish(transport, "q", 1);
    const c = consumer(transport, ["q"]);
    await until(() => c.deliveries.length === 1);
    const [delivery] = c.deliveries;
    await delivery!.ack();
    await delivery!.ack();
    await delivery!.reject({ requeue: true });
    c.abort.abort();
    await c.done;
    const again = consumer(transport, ["q"]);
    await sleep(50); // a declared window (memory's redeliveryWindow is 0): nothing comes
    expect(again.deliveries).toHaveLength(0);
    again.abort.abort();
    await transport.close();
  });

  it("retries an ack that failed with a retryable error until it is written, holding its prefetch slot", async () => {
    const broker = new MemoryBroker();
    let failures = 0;
    let failAcks = true;
    const kit = kitTransport(broker, {
      async ack() {
        if (failAcks) {
          failures++;
          throw new CeleryTsError("CONNECTION", "broker unreachable", { retryable: true });
        }
      },
    });
    broker.push("q", "first");
    broker.push("q", "second");
    const c = consumer(kit, ["q"], 1);
    await until(() => c.deliveries.length === 1, 10_000, "the first delivery");
    const acked = c.deliveries[0]!.ack();
    await until(() => failures >= 3, 10_000, "the ack tried again");
    // Still outstanding (its lease renewed): the consumer takes nothing beyond its prefetch.
    expect(kit.outstanding()).toHaveLength(1);
    expect(c.deliveries).toHaveLength(1);
    failAcks = false;
    await acked;
    await until(() => c.deliveries.length === 2, 10_000, "the second delivery after the ack");
    await c.deliveries[1]!.ack();
    expect(kit.outstanding()).toHaveLength(0);
    c.abort.abort();
    await kit.close();
  });

  it("frees the prefetch slot when the ack fails for good: the message comes back later, the consumer goes on", async () => {
    const broker = new MemoryBroker();
    let failAcks = true;
    const kit = kitTransport(broker, {
      async ack() {
        if (failAcks) throw new CeleryTsError("CONNECTION", "refused", { retryable: false });
      },
    });
    broker.push("q", "first");
    broker.push("q", "second");
    const c = consumer(kit, ["q"], 1);
    await until(() => c.deliveries.length === 1, 10_000, "the first delivery");
    await expect(c.deliveries[0]!.ack()).rejects.toThrow(/refused/);
    // concurrency 1: the failed ack must not stall the consumer
    await until(() => c.deliveries.length === 2, 10_000, "the second delivery after a failed ack");
    failAcks = false;
    await c.deliveries[1]!.ack();
    expect(kit.outstanding()).toHaveLength(0);
    c.abort.abort();
    await kit.close();
  });

  it("fails every settle, consume and ensureOpen with CLOSED after close", async () => {
    const transport = createMemoryTransport();
    await publish(transport, "q", 1);
    const c = consumer(transport, ["q"]);
    await until(() => c.deliveries.length === 1);
    await transport.close();
    await c.done;
    const closed = (error: unknown) => isCeleryTsError(error, "CLOSED");
    await expect(c.deliveries[0]!.ack()).rejects.toSatisfy(closed);
    await expect(c.deliveries[0]!.reject({ requeue: false })).rejects.toSatisfy(closed);
    await expect(transport.publish(message(2), { queue: "q" })).rejects.toSatisfy(closed);
    await expect(
      transport.consume(["q"], () => {}, { prefetch: 1, signal: new AbortController().signal }),
    ).rejects.toSatisfy(closed);
    expect(closedError("x", "X transport").message).toBe("[celery-ts:x] the X transport is closed");
  });
});

describe("the driver kit: consuming", () => {
  it("keeps at most `prefetch` outstanding and reads it again on every take", async () => {
    const transport = createMemoryTransport();
    await publish(transport, "q", 6);
    const c = consumer(transport, ["q"], 2);
    await until(() => c.deliveries.length === 2);
    await sleep(30); // a declared window: nothing more while full
    expect(c.deliveries).toHaveLength(2);
    c.options.prefetch = 4; // as the worker does while it holds eta messages
    await c.deliveries[0]!.ack(); // any wake-up re-reads the prefetch
    await until(() => c.deliveries.length === 5, 10_000, "the raised prefetch");
    c.abort.abort();
    await c.done;
    await transport.close();
  });

  it("hands a malformed message to the callback as { error, raw }", async () => {
    const broker = new MemoryBroker();
    const transport = createMemoryTransport({ broker });
    broker.push("q", "not json");
    const c = consumer(transport, ["q"]);
    await until(() => c.deliveries.length === 1);
    const [delivery] = c.deliveries;
    expect(delivery!.message).toBeUndefined();
    expect(delivery!.raw).toBe("not json");
    expect(isCeleryTsError(delivery!.error, "MALFORMED_MESSAGE")).toBe(true);
    c.abort.abort();
    await transport.close();
  });

  it("hands back the messages a throwing callback never saw, and rejects consume() with its error", async () => {
    const broker = new MemoryBroker();
    const transport = createMemoryTransport({ broker });
    await publish(transport, "q", 3);
    const seen: string[] = [];
    const done = transport.consume(
      ["q"],
      (d) => {
        seen.push(d.deliveryTag);
        throw new Error("callback bug");
      },
      { prefetch: 3, signal: new AbortController().signal },
    );
    await expect(done).rejects.toThrow("callback bug");
    expect(seen).toHaveLength(1);
    const other = consumer(createMemoryTransport({ broker }), ["q"]);
    await until(() => other.deliveries.length === 2, 10_000, "the handed-back messages");
    expect(other.deliveries.map((d) => d.redelivered)).toEqual([true, true]);
    other.abort.abort();
  });

  it("retries a take that fails with a retryable error, and stops on one that is not", async () => {
    const broker = new MemoryBroker();
    broker.push("q", "m");
    let failures = 2;
    const retrying = kitTransport(broker, {
      open: (queues) => {
        const source = memoryPrimitives(broker).open(queues) as MessageSource<Handle>;
        return {
          ...source,
          take: async (request) => {
            if (failures-- > 0) throw new CeleryTsError("CONNECTION", "down", { retryable: true });
            return source.take(request);
          },
        };
      },
    });
    const c = consumer(retrying, ["q"]);
    await until(() => c.deliveries.length === 1, 10_000, "a delivery after two failed takes");
    c.abort.abort();
    await retrying.close();

    const broken = kitTransport(broker, {
      open: () => ({
        take: async () => {
          throw new CeleryTsError("CONFIG", "bad credentials");
        },
      }),
    });
    await expect(consumer(broken, ["q"]).done).rejects.toThrow("bad credentials");
  });

  it("keeps a wake-up that comes while a take is under way: it takes again at once, not after the poll", async () => {
    const broker = new MemoryBroker();
    let wake: (() => void) | undefined;
    let takes = 0;
    let release: (() => void) | undefined;
    const kit = createConsumerKit<Handle>({
      pkg: "test",
      what: "test transport",
      // An hour: only a kept wake-up can make the second take happen within the test.
      pollInterval: 3600,
      primitives: {
        ...memoryPrimitives(broker),
        open: (queues) => {
          const source = memoryPrimitives(broker).open(queues) as MessageSource<Handle>;
          return {
            subscribe: (listener) => ((wake = listener), () => (wake = undefined)),
            take: async (request) => {
              takes++;
              // The first take looks (finds nothing), then waits for the test to wake it.
              const found = await source.take(request);
              if (takes === 1) await new Promise<void>((resolve) => (release = resolve));
              return found;
            },
          };
        },
      },
    });
    const c = consumer(kit, ["q"]);
    await until(() => release !== undefined, 10_000, "the first take");
    broker.push("q", "a message");
    wake?.();
    release?.();
    await until(() => c.deliveries.length === 1, 10_000, "the message whose wake-up came mid-take");
    c.abort.abort();
    await kit.close();
  });

  it("acks and takes in one call (ackAndTake) where the freed slot would take anyway, and carries a result only where the driver can", async () => {
    const broker = new MemoryBroker();
    const calls: string[] = [];
    const results: unknown[] = [];
    const kit = kitTransport(broker, {
      open: (queues) => {
        const source = memoryPrimitives(broker).open(queues) as MessageSource<Handle>;
        return {
          ...source,
          take: async (request) => {
            calls.push(`take ${request.max}`);
            return source.take(request);
          },
          ackAndTake: async (acks, request) => {
            calls.push(`ackAndTake ${acks.length} ${request.max}`);
            results.push(...acks.map((ack) => ack.result));
            return request.max > 0 ? source.take(request) : { messages: [] };
          },
        };
      },
      async ack(_handle, result) {
        calls.push("ack");
        results.push(result);
      },
      carries: (result) => result.taskId !== "elsewhere",
    });
    for (const n of [1, 2, 3]) broker.push("q", `m${n}`);
    const c = consumer(kit, ["q"], 1);
    await until(() => c.deliveries.length === 1, 10_000, "the first delivery");
    expect(await c.deliveries[0]!.ackWithResult!({ taskId: "here" })).toBe(true);
    await until(() => c.deliveries.length === 2, 10_000, "the second, taken with the ack");
    // Not carried: nothing written, the delivery still outstanding (within the prefetch of 1).
    expect(await c.deliveries[1]!.ackWithResult!({ taskId: "elsewhere" })).toBe(false);
    expect(kit.outstanding()).toHaveLength(1);
    await c.deliveries[1]!.ack();
    await until(() => c.deliveries.length === 3, 10_000, "the third");
    await c.deliveries[2]!.ack();
    expect(calls).toEqual(["take 1", "ackAndTake 1 1", "ackAndTake 1 1", "ackAndTake 1 1"]);
    expect(results).toEqual([{ taskId: "here" }, undefined, undefined]);
    expect(kit.outstanding()).toHaveLength(0);
    c.abort.abort();
    await kit.close();
  });

  it("writes the acks of one tick in one ackAndTake, taking with them only where the slots they free would take anyway", async () => {
    const broker = new MemoryBroker();
    const calls: string[] = [];
    const kit = kitTransport(
      broker,
      {
        open: (queues) => {
          const source = memoryPrimitives(broker).open(queues) as MessageSource<Handle>;
          return {
            ...source,
            ackAndTake: async (acks, request) => {
              calls.push(`ackAndTake ${acks.length} ${request.max}`);
              return request.max > 0 ? source.take(request) : { messages: [] };
            },
          };
        },
      },
      { batchWhenBusy: true },
    );
    for (let n = 0; n < 12; n++) broker.push("q", `m${n}`);
    const c = consumer(kit, ["q"], 8);
    await until(() => c.deliveries.length === 8, 10_000, "the first eight");
    // One ack frees one slot of eight, under a quarter: written alone, nothing taken.
    await c.deliveries[0]!.ack();
    expect(calls).toEqual(["ackAndTake 1 0"]);
    // Three acks in one tick: one call, which takes the four slots free then.
    await Promise.all(c.deliveries.slice(1, 4).map((d) => d.ack()));
    expect(calls).toEqual(["ackAndTake 1 0", "ackAndTake 3 4"]);
    await until(() => c.deliveries.length === 12, 10_000, "four more, taken with the acks");
    await Promise.all(c.deliveries.slice(4).map((d) => d.ack()));
    expect(kit.outstanding()).toHaveLength(0);
    c.abort.abort();
    await kit.close();
  });

  it("runs two takes at once, each of half the prefetch, where the source can ack and take in one call; what they bring after a stop goes back in the order taken", async () => {
    const broker = new MemoryBroker();
    const asked: number[] = [];
    const gates: (() => void)[] = [];
    const handedBack: Handle[][] = [];
    const kit = kitTransport(broker, {
      open: (queues) => {
        const source = memoryPrimitives(broker).open(queues) as MessageSource<Handle>;
        return {
          ...source,
          take: async (request) => {
            asked.push(request.max);
            const found = await source.take(request);
            await new Promise<void>((resolve) => gates.push(resolve));
            return found;
          },
          ackAndTake: async (_acks, request) =>
            request.max > 0 ? source.take(request) : { messages: [] },
        };
      },
      handBack: async (handles) => void handedBack.push([...handles]),
    });
    for (let n = 0; n < 4; n++) broker.push("q", `m${n}`);
    const c = consumer(kit, ["q"], 4);
    await until(() => gates.length === 2, 10_000, "two takes under way");
    expect(asked).toEqual([2, 2]);
    c.abort.abort();
    // The later take answers first: still, the earlier one's messages go back first.
    gates[1]!();
    // Past its answer (a few ticks): nothing went back yet.
    for (let tick = 0; tick < 5; tick++) await new Promise((resolve) => setImmediate(resolve));
    expect(handedBack).toEqual([]);
    gates[0]!();
    await until(() => handedBack.length === 1, 10_000, "the hand-back");
    expect(handedBack[0]!.map((h) => h.raw)).toEqual(["m0", "m1", "m2", "m3"]);
    expect(c.deliveries).toHaveLength(0);
    await kit.close();
  });

  it("does not let an empty take that was sent before a wake-up, or before a take that found messages, idle the lane", async () => {
    // A scripted source: every take waits until the test answers it.
    const takes: { max: number; answer: (messages: number) => void }[] = [];
    let wake: (() => void) | undefined;
    const taken = (n: number) => ({
      handle: { seq: n, queue: "q", raw: `m${n}`, priority: 0, availableAt: 0, redelivered: false },
      queue: "q",
      raw: `m${n}`,
      redelivered: false,
    });
    const scripted = (request: { max: number; signal: AbortSignal }) =>
      new Promise<TakeBatch<Handle>>((resolve) => {
        // Where it found messages, the source says to look again at once (as Redis does).
        const answer = (count: number) =>
          resolve(
            count > 0
              ? { messages: Array.from({ length: count }, (_, i) => taken(i)), lookAgainIn: 0 }
              : { messages: [] },
          );
        request.signal.addEventListener("abort", () => resolve({ messages: [] }));
        takes.push({ max: request.max, answer });
      });
    const kit = createConsumerKit<Handle>({
      pkg: "test",
      what: "test transport",
      // An hour: a lane idled by mistake takes nothing more within the test.
      pollInterval: 3600,
      primitives: {
        ...memoryPrimitives(new MemoryBroker()),
        open: () => ({
          subscribe: (listener) => ((wake = listener), () => (wake = undefined)),
          take: scripted,
          ackAndTake: async (_acks, request) =>
            request.max > 0 ? scripted(request) : { messages: [] },
        }),
        handBack: async () => {},
      },
    });
    const ticks = async () => {
      for (let tick = 0; tick < 5; tick++) await new Promise((resolve) => setImmediate(resolve));
    };
    const c = consumer(kit, ["q"], 4);
    await until(() => takes.length === 2, 10_000, "two takes under way");
    // The first finds nothing: the lane idles; then messages arrive (a wake-up).
    takes[0]!.answer(0);
    await ticks();
    wake!();
    await ticks();
    // The second finds nothing, but it may have looked before the messages came.
    takes[1]!.answer(0);
    await until(() => takes.length === 3, 10_000, "a take after the wake-up");
    takes[2]!.answer(2);
    await until(() => c.deliveries.length === 2, 10_000, "the two messages");
    // Messages came: the lane looks again at once, not after its poll interval.
    await until(() => takes.length === 4, 10_000, "a take right after the messages");
    c.abort.abort();
    await kit.close();
  });

  it("keeps outstanding deliveries within twice the prefetch while ack writes keep failing", async () => {
    const broker = new MemoryBroker();
    for (let n = 0; n < 40; n++) broker.push("q", `m${n}`);
    let failing = true;
    let failures = 0;
    const kit = createConsumerKit<Handle>({
      pkg: "test",
      what: "test transport",
      backoff: { initial: 0.005, max: 0.01 },
      primitives: {
        ...memoryPrimitives(broker),
        open: (queues) => {
          const source = memoryPrimitives(broker).open(queues) as MessageSource<Handle>;
          return {
            ...source,
            // Slower than the retries' backoff: retries of different acks are under way together.
            ackAndTake: async (_acks, request) => {
              await sleep(20);
              if (failing) {
                failures++;
                throw new CeleryTsError("CONNECTION", "unreachable", { retryable: true });
              }
              return request.max > 0 ? source.take(request) : { messages: [] };
            },
          };
        },
      },
    });
    let most = 0;
    const acks: Promise<void>[] = [];
    const abort = new AbortController();
    const done = kit.consume(
      ["q"],
      (delivery) => {
        most = Math.max(most, kit.outstanding().length);
        acks.push(delivery.ack());
      },
      { prefetch: 4, signal: abort.signal },
    );
    await until(() => failures >= 30, 10_000, "acks failing again and again");
    failing = false;
    await until(() => acks.length === 40, 10_000, "every message");
    await Promise.all(acks);
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(8);
    abort.abort();
    await done;
    await kit.close();
  });

  it("renews leases every third of the visibility timeout while deliveries are outstanding", async () => {
    const broker = new MemoryBroker();
    const renewals: number[] = [];
    const kit = kitTransport(
      broker,
      { extendLeases: async (handles) => void renewals.push(handles.length) },
      { visibilityTimeout: 0.15 },
    );
    broker.push("q", "a");
    broker.push("q", "b");
    const c = consumer(kit, ["q"]);
    await until(() => c.deliveries.length === 2);
    await until(() => renewals.length >= 2, 10_000, "two renewals");
    expect(renewals.slice(0, 2)).toEqual([2, 2]);
    await Promise.all(c.deliveries.map((d) => d.ack()));
    const count = renewals.length;
    await sleep(150); // a whole lease: no renewal without outstanding deliveries
    expect(renewals.length).toBeLessThanOrEqual(count + 1);
    c.abort.abort();
    await kit.close();
  });

  it("hands back outstanding deliveries on a graceful close, and forgets them on a forced one", async () => {
    const broker = new MemoryBroker();
    const handedBack: Handle[][] = [];
    const make = () =>
      kitTransport(broker, { handBack: async (handles) => void handedBack.push([...handles]) });
    broker.push("q", "a");
    const graceful = make();
    const c1 = consumer(graceful, ["q"]);
    await until(() => c1.deliveries.length === 1);
    await graceful.close();
    expect(handedBack.map((h) => h.length)).toEqual([1]);
    broker.push("q", "b");
    const forced = make();
    const c2 = consumer(forced, ["q"]);
    await until(() => c2.deliveries.length === 1);
    await forced.close({ force: true });
    expect(handedBack).toHaveLength(1);
  });
});

describe("the driver kit: helpers", () => {
  it("reads a dead-letter selection's limit as a whole count, or none", () => {
    expect([undefined, Infinity, Number.NaN].map(deadLetterCountLimit)).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    expect([0, 2.9, -3].map((limit) => deadLetterCountLimit(limit))).toEqual([0, 2, 0]);
  });

  it("reads durations in seconds and names the option when one is wrong", () => {
    expect(durationOption("x", "visibilityTimeout", undefined, 30)).toBe(30);
    expect(durationOption("x", "visibilityTimeout", 0.5, 30)).toBe(0.5);
    expect(durationOption("x", "window", 0, 1, { zero: true })).toBe(0);
    expect(() => durationOption("x", "visibilityTimeout", 0, 30)).toThrow(
      "visibilityTimeout must be a number of seconds above 0, got 0",
    );
    expect(() => durationOption("x", "waitTime", 21, 10, { max: 20, integer: true })).toThrow(
      "waitTime must be a whole number of seconds from 1 to 20, got 21",
    );
  });

  it("backs off exponentially with full jitter, capped", () => {
    const top = () => 0.999_999;
    expect(backoffDelay(1, { initial: 0.1, max: 5 }, top)).toBeCloseTo(0.1);
    expect(backoffDelay(4, { initial: 0.1, max: 5 }, top)).toBeCloseTo(0.8);
    expect(backoffDelay(20, { initial: 0.1, max: 5 }, top)).toBeCloseTo(5);
    expect(backoffDelay(3, {}, () => 0)).toBe(0);
  });

  it("finds network error codes, also inside AggregateError and causes", () => {
    const refused = Object.assign(new Error("connect"), { code: "ECONNREFUSED" });
    expect(networkErrorCode(refused)).toBe("ECONNREFUSED");
    expect(networkErrorCode(new AggregateError([new Error("x"), refused]))).toBe("ECONNREFUSED");
    expect(networkErrorCode(new Error("wrapped", { cause: refused }))).toBe("ECONNREFUSED");
    expect(networkErrorCode(Object.assign(new Error("x"), { code: "EACCES" }))).toBeUndefined();
  });

  it("resolves a URL scheme a third-party driver registered, and refuses a second owner", async () => {
    const broker = new MemoryBroker();
    registerDriver({
      pkg: "celery-ts-toy",
      schemes: ["toy"],
      createTransportFromUrl: () => createMemoryTransport({ broker }),
    });
    const transport = await resolveTransport("TOY://anything");
    expect(transport.name).toBe("memory");
    expect(() => registerDriver({ pkg: "another", schemes: ["toy"] })).toThrow(
      /celery-ts-toy already did/,
    );
    await expect(resolveTransport("nope://x")).rejects.toThrow(/unknown URL scheme "nope:\/\/"/);
    await transport.close();
  });

  it("sleeps, and wakes early when aborted", async () => {
    const abort = new AbortController();
    const started = Date.now();
    const slept = sleep(10_000, abort.signal);
    abort.abort();
    await slept;
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("routes broadcasts by binding key: fanout to all, direct by equal key, topic by pattern", () => {
    const fanout = { name: "e", type: "fanout" } as const;
    const direct = { name: "e", type: "direct" } as const;
    const topic = { name: "e", type: "topic" } as const;
    expect(bindingMatches(fanout, "a", "b")).toBe(true);
    expect(bindingMatches(direct, "a.b", "a.b")).toBe(true);
    expect(bindingMatches(direct, "a.*", "a.b")).toBe(false);
    expect(bindingMatches(topic, "a.*", "a.b")).toBe(true);
    expect(bindingMatches(topic, "a.*", "b.a")).toBe(false);
  });

  it("delivers a stored broadcast, and drops an unreadable one with a warning", () => {
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (text: string) => void warnings.push(text) };
    const delivered: unknown[] = [];
    const wire = encodeTaskMessage(createTaskMessage({ id: "b-1", task: "t" }));
    const raw = encodeEnvelope(wire, {
      exchange: "e",
      routingKey: "k",
      priority: 0,
      deliveryTag: "d",
    });
    deliverBroadcast("toy", logger, raw, "k", (d) => delivered.push(d));
    deliverBroadcast("toy", logger, "{not json", "k", (d) => delivered.push(d));
    expect(delivered).toEqual([
      {
        message: expect.objectContaining({ body: wire.body, headers: wire.headers }),
        routingKey: "k",
      },
    ]);
    expect(warnings).toEqual(["toy: dropped an unreadable broadcast message"]);
  });

  it("puts the dead-letter methods on a transport only when dead letters are on, closed after close", async () => {
    const bare = createMemoryTransport({ deadLetters: false });
    const calls: string[] = [];
    let open = true;
    const withThem = withDeadLetters(
      bare,
      () => {
        if (!open) throw closedError("toy", "toy transport");
      },
      {
        list: async (queue, limit) => (calls.push(`list ${queue} ${limit}`), []),
        replay: async (queue, { taskId }) => (calls.push(`replay ${queue} ${taskId}`), 1),
        purge: async (queue, { limit }) => (calls.push(`purge ${queue} ${limit}`), 2),
      },
    );
    expect(withDeadLetters(bare, () => {}, undefined)).toBe(bare);
    expect(await withThem.deadLetters?.("q", { limit: 3 })).toEqual([]);
    expect(await withThem.replayDeadLetters?.("q", { taskId: "t" })).toBe(1);
    expect(await withThem.purgeDeadLetters?.("q", { limit: 5 })).toBe(2);
    expect(calls).toEqual(["list q 3", "replay q t", "purge q 5"]);
    open = false;
    await expect(withThem.deadLetters?.("q")).rejects.toMatchObject({ code: "CLOSED" });
    await bare.close();
  });
});

describe("the driver kit: connection events", () => {
  it("tells every listener, and logs a listener that throws instead of hiding it", () => {
    const warnings: unknown[][] = [];
    const logger = { ...silentLogger, warn: (...args: unknown[]) => void warnings.push(args) };
    const events = createConnectionEvents(logger);
    const seen: string[] = [];
    events.add(() => {
      throw new Error("counter broke");
    });
    const remove = events.add((event) => seen.push(`${event.role} ${event.type}`));
    events.emit({ type: "lost", role: "consumer" });
    expect(seen).toEqual(["consumer lost"]);
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0])).toContain("counter broke");
    remove();
    events.emit({ type: "recovered", role: "consumer" });
    expect(seen).toEqual(["consumer lost"]);
  });
});
