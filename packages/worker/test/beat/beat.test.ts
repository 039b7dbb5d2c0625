import {
  MemoryBroker,
  MemoryStoreSpace,
  createMemoryStore,
  createMemoryTransport,
  decodeEnvelope,
  decodeTaskMessage,
  silentLogger,
  type CoordinationStore,
} from "@celery-ts/core";
import { afterEach, describe, expect, it, onTestFinished, vi } from "vitest";
import { createBeat, tickTaskId, type Beat, type BeatEntry } from "../../src/index.ts";
import { beatKeys } from "../../src/beat/beat-schedule.ts";
import { createLeaderLease } from "../../src/beat/leader-lease.ts";
import { sleep } from "@celery-ts/core/driver";

vi.setConfig({ testTimeout: 20_000 });

interface Sent {
  task: string;
  id: string;
  queue: string;
  priority: unknown;
  expires: unknown;
  args: unknown;
  kwargs: unknown;
  at: number;
}

/** Drains every queue of the broker as messages arrive. */
function collect(broker: MemoryBroker, queues: string[]): { sent: Sent[]; stop(): void } {
  const sent: Sent[] = [];
  const timer = setInterval(() => {
    for (let m = broker.take(queues, Date.now()); m; m = broker.take(queues, Date.now())) {
      const message = decodeTaskMessage(decodeEnvelope(m.raw).message);
      const { headers, properties, args, kwargs } = message;
      sent.push({
        task: headers.task,
        id: headers.id,
        queue: m.queue,
        priority: properties.priority,
        expires: headers.expires,
        args,
        kwargs,
        at: Date.now(),
      });
    }
  }, 10);
  return { sent, stop: () => clearInterval(timer) };
}

async function until(check: () => boolean, withinMs: number, what: string): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Waits, bounded, until `count()` stays the same for a whole `windowMs` (many tick periods), and
 * returns it: nothing more is sent. A tick already under way may land first, however long a
 * loaded machine takes to finish it; a beat that keeps sending fails once `withinMs` is over.
 */
async function quiet(count: () => number, windowMs: number, what: string): Promise<number> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const before = count();
    await sleep(windowMs);
    if (count() === before) return before;
    if (Date.now() > deadline) throw new Error(`still sending after 15 s: ${what}`);
  }
}

describe("beat (in process, memory broker and store)", () => {
  const beats: Beat[] = [];
  const stops: (() => void)[] = [];
  afterEach(async () => {
    await Promise.all(beats.splice(0).map((beat) => beat.stop()));
    stops.splice(0).forEach((stop) => stop());
  });

  const setup = (entries: BeatEntry[], count: number, namespace = "test") => {
    const broker = new MemoryBroker();
    const space = new MemoryStoreSpace();
    const started = Array.from({ length: count }, () => {
      const beat = createBeat({
        broker: createMemoryTransport({ broker }),
        store: createMemoryStore({ space }),
        entries,
        namespace,
        leaseSeconds: 0.6,
        logger: silentLogger,
      });
      beats.push(beat);
      return beat;
    });
    const inbox = collect(broker, ["celery", "reports"]);
    stops.push(inbox.stop);
    return { broker, space, beats: started, inbox };
  };

  it("sends each tick once, from one leader, with the entry's args, kwargs and options", async () => {
    const entry: BeatEntry = {
      name: "report",
      task: "reports.build",
      every: 0.2,
      args: [1, "two"],
      kwargs: { full: true },
      options: { queue: "reports", priority: 3, expires: 30 },
    };
    const { beats: three, inbox } = setup([entry], 3);
    await Promise.all(three.map((beat) => beat.start()));
    await until(() => inbox.sent.length >= 10, 10_000, "ten ticks");
    expect(three.filter((beat) => beat.isLeader)).toHaveLength(1);
    // No burst on start: ten 200 ms ticks take (at least nearly) nine periods.
    expect(inbox.sent[9]!.at - inbox.sent[0]!.at).toBeGreaterThan(1_500);
    const ids = inbox.sent.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    const first = inbox.sent[0]!;
    expect(first).toMatchObject({
      task: "reports.build",
      queue: "reports",
      priority: 3,
      args: [1, "two"],
      kwargs: { full: true },
    });
    expect(typeof first.expires).toBe("string");
    // The ids are those of consecutive 200 ms ticks: none missed, none twice.
    const tickOf = new Map<string, number>();
    const start = Math.floor(first.at / 200) * 200 - 30_000;
    for (let t = start; t < Date.now() + 1_000; t += 200)
      tickOf.set(tickTaskId("test", "report", t), t);
    const ticks = ids.map((id) => tickOf.get(id)!);
    expect(ticks.every((t) => t !== undefined)).toBe(true);
    ticks.forEach((t, i) => i > 0 && expect(t - ticks[i - 1]!).toBe(200));
  });

  it("hands over at once when the leader stops, with no tick twice and none missed", async () => {
    const { beats: two, inbox } = setup([{ name: "e", task: "t", every: 0.2 }], 2);
    await Promise.all(two.map((beat) => beat.start()));
    await until(() => inbox.sent.length >= 3, 10_000, "three ticks");
    const leader = two.find((beat) => beat.isLeader)!;
    const other = two.find((beat) => beat !== leader)!;
    await leader.stop();
    const before = inbox.sent.length;
    await until(() => inbox.sent.length >= before + 5, 10_000, "five ticks from the other");
    expect(other.isLeader).toBe(true);
    const ids = inbox.sent.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("sees entries added, paused, resumed and removed at run time, on every instance", async () => {
    const { beats: two, inbox } = setup([], 2, "dynamic");
    await Promise.all(two.map((beat) => beat.start()));
    // Added through one instance; whichever leads sends it.
    await two[0]!.schedule.add({ name: "dyn", task: "dyn.task", every: 0.2, kwargs: { x: 1 } });
    await until(() => inbox.sent.some((m) => m.task === "dyn.task"), 5_000, "the added entry");
    const listed = await two[1]!.schedule.list();
    expect(listed).toMatchObject([{ name: "dyn", source: "store", paused: false }]);
    expect(listed[0]!.last?.state).toMatch(/sent|sending/);
    // Changed: a new task name takes effect without a restart.
    await two[1]!.schedule.add({ name: "dyn", task: "dyn.changed", every: 0.2 });
    await until(() => inbox.sent.some((m) => m.task === "dyn.changed"), 5_000, "the changed entry");
    await two[1]!.schedule.pause("dyn");
    const whilePaused = await quiet(() => inbox.sent.length, 1_000, "ticks while paused");
    expect((await two[0]!.schedule.list())[0]).toMatchObject({ paused: true });
    await two[0]!.schedule.resume("dyn");
    await until(() => inbox.sent.length > whilePaused, 5_000, "ticks after resume");
    // Resuming sends no catch-up burst: the ticks skipped while paused stay skipped.
    await sleep(500);
    expect(inbox.sent.length - whilePaused).toBeLessThanOrEqual(5);
    expect(await two[0]!.schedule.remove("dyn")).toBe(true);
    expect(await two[0]!.schedule.remove("dyn")).toBe(false);
    await quiet(() => inbox.sent.length, 1_000, "ticks after removal");
    expect(await two[0]!.schedule.list()).toEqual([]);
    await expect(two[0]!.schedule.pause("nope")).rejects.toThrow(/no beat entry named "nope"/);
  });

  it("lists code entries as the leader saw them, and pauses them through the store", async () => {
    const { beats: one, inbox } = setup(
      [{ name: "code", task: "code.task", every: 0.2 }],
      1,
      "code",
    );
    await one[0]!.start();
    await until(() => inbox.sent.length >= 1, 5_000, "a tick");
    const [status] = await one[0]!.schedule.list();
    expect(status).toMatchObject({ name: "code", source: "code", entry: { task: "code.task" } });
    await one[0]!.schedule.pause("code");
    await quiet(() => inbox.sent.length, 1_000, "ticks while paused");
  });
});

describe("beat after downtime", () => {
  // Ticks a year apart, so that no regular tick falls inside the test; the last one recorded is
  // a year before the latest: the latest was missed (beat was "down").
  const YEAR_MS = 365 * 86_400_000;

  for (const catchUp of ["once", "skip"] as const) {
    it(`catches up with "${catchUp}": ${catchUp === "once" ? "one message for all missed ticks" : "none"}, never a burst`, async () => {
      const broker = new MemoryBroker();
      const space = new MemoryStoreSpace();
      const store = createMemoryStore({ space });
      const latest = Math.floor(Date.now() / YEAR_MS) * YEAR_MS;
      const keys = beatKeys("downtime");
      const old = {
        tick: latest - 3 * YEAR_MS,
        state: "sent",
        id: "x",
        token: 1,
        at: 0,
        task: "t",
      };
      await store.setIfAbsent(`${keys.last}yearly`, JSON.stringify(old));
      const beat = createBeat({
        broker: createMemoryTransport({ broker }),
        store,
        namespace: "downtime",
        entries: [{ name: "yearly", task: "t.yearly", every: YEAR_MS / 1000, catchUp }],
        leaseSeconds: 0.6,
      });
      const inbox = collect(broker, ["celery"]);
      try {
        await beat.start();
        await until(() => beat.isLeader, 5_000, "leadership");
        const record = async () =>
          JSON.parse((await store.get(`${keys.last}yearly`))!) as { tick: number; state: string };
        const deadline = Date.now() + 5_000;
        while ((await record()).tick !== latest && Date.now() < deadline) await sleep(20);
        expect(await record()).toMatchObject({
          tick: latest,
          state: catchUp === "once" ? "sent" : "skipped",
        });
        await sleep(1_000); // a declared window: nothing more is sent
        expect(inbox.sent.length).toBe(catchUp === "once" ? 1 : 0);
        if (catchUp === "once")
          expect(inbox.sent[0]!.id).toBe(tickTaskId("downtime", "yearly", latest));
      } finally {
        inbox.stop();
        await beat.stop();
      }
    });
  }
});

describe("leader lease", () => {
  const stores: CoordinationStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  /** Two instances' leases over one memory store, each with its own connection. */
  const twoLeases = (namespace: string, leaseMs: number) => {
    const space = new MemoryStoreSpace();
    const keys = beatKeys(namespace);
    const make = (id: string) => {
      const store = createMemoryStore({ space });
      stores.push(store);
      const lease = createLeaderLease({
        store,
        keys,
        instanceId: id,
        leaseMs,
        logger: silentLogger,
      });
      return { store, lease };
    };
    return { keys, a: make("a"), b: make("b") };
  };

  it("fences out a holder that was paused past its lease", async () => {
    const { keys, a, b } = twoLeases("fence", 300);
    expect(await a.lease.acquire()).toBe(true);
    const oldToken = a.lease.token!;
    expect(await b.lease.acquire()).toBe(false);
    // A stops renewing (a pause); once its lease expires in the store, B takes over.
    const deadline = Date.now() + 3_000;
    while (!(await b.lease.acquire())) {
      if (Date.now() > deadline) throw new Error("B never took over");
      await sleep(20);
    }
    expect(b.lease.token).toBe(oldToken + 1);
    // A, waking up, writes with its old token: the store refuses.
    const written = await a.store.compareAndSet(`${keys.last}e`, undefined, "late", {
      fence: { key: keys.fence, token: oldToken },
    });
    expect(written).toBe(false);
    // And A knows by its own clock that it no longer leads, and cannot renew.
    expect(a.lease.token).toBeUndefined();
    expect(await a.lease.renew(Date.now())).toBe(false);
    expect(await a.lease.acquire()).toBe(false);
    await b.lease.release();
    expect(await a.lease.acquire()).toBe(true);
    expect(a.lease.token).toBe(oldToken + 2);
  });

  it("counts a renewal from the send it follows, so a follower that wakes when it runs out takes over within the lease of that send", async () => {
    // The lease's and the memory store's clock, moved by the test: no sleep to stand for the
    // send, and no take-over window that a loaded machine's late timer misses.
    vi.useFakeTimers({ toFake: ["Date"] });
    onTestFinished(() => void vi.useRealTimers());
    const leases = twoLeases("renew-from", 2_400);
    const [a, b] = [leases.a.lease, leases.b.lease];
    expect(a.keyTtlMs).toBe(1_600);
    expect(await a.acquire()).toBe(true);
    const sentAt = Date.now();
    vi.setSystemTime(sentAt + 300); // the send took 300 ms; the renewal comes after it
    expect(await a.renew(sentAt)).toBe(true);
    expect(a.token).toBeDefined();
    expect(a.from).toBe(sentAt);
    // B reads when the lease runs out: 1.6 s (two thirds of the lease) after the send, not after
    // the renewal.
    expect(Date.now() + (await b.remaining())!).toBe(sentAt + 1_600);
    expect(await b.acquire()).toBe(false);
    vi.setSystemTime(sentAt + 1_599);
    expect(await b.acquire()).toBe(false);
    // Run out, within the lease (2.4 s) of A's last send: the rest of it is B's to send in.
    vi.setSystemTime(sentAt + 1_600);
    expect(await b.acquire()).toBe(true);
    expect(a.token).toBeUndefined();
    expect(await a.renew(sentAt)).toBe(false);
    expect(await a.remaining()).toBeGreaterThan(0);
    await b.release();
    expect(await a.remaining()).toBeUndefined();
  });
});
