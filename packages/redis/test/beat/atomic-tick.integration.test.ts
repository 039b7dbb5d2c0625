// A beat leader killed right after it published a tick, before it could do anything more (the
// `CELERY_TS_BEAT_TEST_CRASH=after-publish` hook: it SIGKILLs itself as the publish returns).
// Where the broker is the store's server, the tick's message and its record were written in one
// atomic step: after the kill the record already says `sent` with the message's id, the message
// is on the queue, and the next leader goes on from the next tick: every tick arrives once.
// Published and recorded in two steps (before, and still with a store on another server: here a
// Redis broker with a SQLite store), the record says `sending` and the next leader publishes the
// tick again with its id: the documented duplicate, shown here so this test can tell them apart
// (each copy carries the claim that lets celery-ts workers with a store run it once: see
// packages/amqp/test/beat-once.integration.test.ts).
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJson, resolveStore } from "@celery-ts/core";
import { createBeat, tickTaskId } from "@celery-ts/worker";
import { describe, it, vi } from "vitest";
import { BACKENDS, receive, type Backend } from "./backends.ts";
import { BeatProcess, waitFor } from "./beat-process.ts";

// Two node processes one after the other: slow to start on a loaded machine.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 30_000 });

const LEASE_S = 2;

interface Case {
  name: string;
  broker: string;
  /** The store, when not the broker's own. */
  store?: string;
  /** How many copies of the killed leader's tick arrive. */
  copies: number;
}

const CASES: Record<string, (b: Backend, dir: string) => Case> = {
  redis: (b) => ({ name: "redis", broker: b.url, copies: 1 }),
  postgres: (b) => ({ name: "postgres", broker: b.url, copies: 1 }),
  sqlite: (b) => ({ name: "sqlite", broker: b.url, copies: 1 }),
  // Not the same server: two steps, at least once.
  "redis+sqlite-store": (b, dir) => ({
    name: "redis broker, SQLite store",
    broker: b.url,
    store: `sqlite:///${join(dir, "store.db")}`,
    copies: 2,
  }),
};

describe("beat: a leader killed between publishing a tick and recording it", () => {
  it.concurrent.for(
    (process.env.CELERY_TS_BEAT_ATOMIC ?? "redis,postgres,sqlite,redis+sqlite-store")
      .split(",")
      .map((name) => ({ name })),
  )("$name", async ({ name }, { expect }) => {
    const make = BACKENDS[name.split("+")[0]!]!;
    const backend = await make();
    const dir = await mkdtemp(join(tmpdir(), "celery-ts-beat-atomic-"));
    const processes: BeatProcess[] = [];
    try {
      const c = CASES[name]!(backend, dir);
      const namespace = `atomic-${randomUUID().slice(0, 8)}`;
      const queue = `beat-atomic-${randomUUID()}`;
      const schedule = join(dir, "schedule.json");
      await writeFile(
        schedule,
        JSON.stringify([{ name: "second", task: "atomic.tick", every: 1, options: { queue } }]),
      );
      const args = ["beat", "--broker", c.broker, "--schedule", schedule];
      args.push("--namespace", namespace, "--lease", String(LEASE_S));
      if (c.store) args.push("--store", c.store);

      const { received, drained, stop: stopReceiving } = receive(backend, queue);

      // The leader that dies as its first publish returns.
      const crashing = new BeatProcess(args, { CELERY_TS_BEAT_TEST_CRASH: "after-publish" });
      processes.push(crashing);
      await waitFor(() => crashing.child.signalCode === "SIGKILL", 120_000, "the crash");
      const mode = crashing.lines.find((l) => l.msg === "beat: started")?.sending;
      // What the killed leader left: its message, and the entry's record in the store.
      const first = (await waitFor(() => received[0], 10_000, "its message"))!;
      const store = await resolveStore(c.store ?? c.broker);
      const record = decodeJson((await store.get(`beat:${namespace}:last:second`)) ?? "null") as {
        state: string;
        id: string;
        tick: number;
      } | null;
      await store.close();

      // The next leader takes over and sends three ticks.
      const next = new BeatProcess(args);
      processes.push(next);
      await waitFor(() => next.count("beat: sent") >= 3, 120_000, "three ticks from the next");
      await next.stop();
      const lastId = String(next.lines.filter((l) => l.msg === "beat: sent").at(-1)!.id);
      await waitFor(() => received.some((r) => r.id === lastId), 10_000, "the last tick");
      // Every beat is stopped (the killed one is dead): nothing more is published. Anything sent
      // twice is on the queue ahead of a marker published now; it has arrived once that has.
      await drained();
      await stopReceiving();

      const counts = new Map<string, number>();
      for (const r of received) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
      const duplicated = [...counts.values()].filter((n) => n > 1).length;
      const figures = {
        case: c.name,
        sending: mode,
        recordAfterKill: record && { state: record.state, sameIdAsMessage: record.id === first.id },
        messages: received.length,
        ticks: counts.size,
        killedLeadersTickCopies: counts.get(first.id),
        duplicated,
      };
      process.stdout.write(`beat atomic tick: ${JSON.stringify(figures)}\n`);

      expect(first.origin).toMatch(new RegExp(`^gen${crashing.pid}@`));
      expect(first.id).toBe(tickTaskId(namespace, "second", record!.tick));
      expect(counts.size).toBeGreaterThanOrEqual(3);
      if (c.copies === 1) {
        // The message and its record were written together: the record says sent, with its id.
        expect(record).toMatchObject({ state: "sent", id: first.id });
        expect(duplicated).toBe(0);
        expect(received.length).toBe(counts.size);
        expect(mode).toBe("exactly once (atomic publish and record)");
        // Nothing to claim: no message carries the claim header.
        expect(received.filter((r) => r.claim)).toEqual([]);
      } else {
        expect(mode).toBe("at least once (two steps)");
        expect(record).toMatchObject({ state: "sending", id: first.id });
        // The documented duplicate, with the tick's id; nothing else twice.
        expect(counts.get(first.id)).toBe(2);
        expect(duplicated).toBe(1);
        // Every message carries its claim: a celery-ts worker with a store runs the tick once.
        expect(received.every((r) => r.claim)).toBe(true);
      }
    } finally {
      await Promise.all(processes.map((p) => p.stop()));
      await backend.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("beat: a `sending` record left by a two-step leader (an older version)", () => {
  it("is published once, with its id, and recorded sent in the same step", async ({ expect }) => {
    const backend = await BACKENDS.redis!();
    const namespace = `atomic-${randomUUID().slice(0, 8)}`;
    const queue = `beat-atomic-${randomUUID()}`;
    const store = await resolveStore(backend.url);
    const stops: (() => Promise<void>)[] = [];
    const beat = createBeat({
      broker: backend.url,
      namespace,
      leaseSeconds: LEASE_S,
      entries: [{ name: "second", task: "atomic.tick", every: 1, options: { queue } }],
    });
    try {
      // What a two-step leader killed between recording a tick and publishing it leaves.
      const tick = Math.floor(Date.now() / 1000) * 1000 - 1000;
      const id = tickTaskId(namespace, "second", tick);
      const key = `beat:${namespace}:last:second`;
      const sending = { tick, state: "sending", id, token: 1, at: Date.now(), task: "atomic.tick" };
      expect(await store.setIfAbsent(key, JSON.stringify(sending))).toBe(true);
      const receiving = receive(backend, queue);
      stops.push(receiving.stop);
      const ids = (): string[] => receiving.received.map((r) => r.id);
      await beat.start();
      await waitFor(() => ids().length >= 3, 30_000, "three ticks");
      await beat.stop();
      // Stopped: nothing more is published; what it sent has arrived once a marker behind it has.
      await receiving.drained();
      await receiving.stop();
      const received = ids();
      expect(received[0]).toBe(id);
      expect(received.filter((r) => r === id)).toHaveLength(1);
      expect(new Set(received).size).toBe(received.length);
      const record = decodeJson((await store.get(key))!) as { state: string; tick: number };
      expect(record.state).toBe("sent");
      expect(record.tick).toBeGreaterThan(tick);
    } finally {
      await beat.stop();
      for (const stop of stops) await stop();
      await store.close();
      await backend.cleanup();
    }
  });
});
