import { join } from "node:path";
import {
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  type Delivery,
  type ResultMeta,
} from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { createSqliteBackend, createSqliteTransport } from "../src/index.ts";
import { withRawDb } from "./support/raw-db.ts";
import { useTempDir } from "./support/temp-dir.ts";

const meta = (id: string, result: unknown): ResultMeta => ({
  status: "SUCCESS",
  result,
  traceback: null,
  children: [],
  date_done: "2026-01-01T00:00:00.000000",
  task_id: id,
});

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Consumes `queue` at prefetch 1, collecting the deliveries. */
function consumer(transport: ReturnType<typeof createSqliteTransport>, queue: string) {
  const deliveries: Delivery[] = [];
  const abort = new AbortController();
  const done = transport.consume([queue], (d) => deliveries.push(d), {
    prefetch: 1,
    signal: abort.signal,
  });
  return { deliveries, stop: () => (abort.abort(), done) };
}

describe("a result written with the ack, broker and backend on one SQLite file", () => {
  const dir = useTempDir();

  it("stores the result (with its expiry, waking waiters) and acknowledges in one write; the next message comes with it", async () => {
    const path = join(dir(), "fused.db");
    const transport = createSqliteTransport({ path });
    const backend = createSqliteBackend({ path, expires: 60 });
    const queue = "fused";
    const messages = [0, 1, 2].map((n) => createTaskMessage({ task: "sqlite.n", args: [n] }));
    for (const m of messages) await transport.publish(encodeTaskMessage(m), { queue });
    const waiting = backend.waitFor(messages[0]!.headers.id, { timeout: 10 });
    const c = consumer(transport, queue);
    for (let n = 0; n < 3; n++) {
      await until(() => c.deliveries.length === n + 1, `delivery ${n}`);
      const id = decodeTaskMessage(c.deliveries[n]!.message!).headers.id;
      const prepared = backend.prepareStore!(id, meta(id, n * 10));
      const before = Date.now();
      expect(await c.deliveries[n]!.ackWithResult!(prepared)).toBe(true);
      expect(await backend.get(id)).toMatchObject({ status: "SUCCESS", result: n * 10 });
      const [row] = withRawDb(path, (db) =>
        db.all("SELECT expires_at FROM celery_ts_results WHERE task_id = ?", id),
      ) as { expires_at: number }[];
      expect(row!.expires_at).toBeGreaterThanOrEqual(before + 59_000);
      expect(row!.expires_at).toBeLessThanOrEqual(Date.now() + 60_000);
    }
    expect(await waiting).toMatchObject({ status: "SUCCESS", result: 0 });
    // Acknowledged: no message row left, reserved or ready.
    expect(withRawDb(path, (db) => db.all("SELECT id FROM celery_ts_messages"))).toEqual([]);
    await c.stop();
    await transport.close();
    await backend.close();
  });

  it("writes nothing for a backend on another file: false, the delivery still to acknowledge", async () => {
    const path = join(dir(), "broker.db");
    const transport = createSqliteTransport({ path });
    const backend = createSqliteBackend({ path: join(dir(), "results.db") });
    const queue = "apart";
    const message = createTaskMessage({ task: "sqlite.n", args: [1] });
    await transport.publish(encodeTaskMessage(message), { queue });
    const c = consumer(transport, queue);
    await until(() => c.deliveries.length === 1, "the delivery");
    const id = message.headers.id;
    const delivery = c.deliveries[0]!;
    expect(await delivery.ackWithResult!(backend.prepareStore!(id, meta(id, 1)))).toBe(false);
    expect(await backend.get(id)).toBeUndefined();
    const reserved = () => withRawDb(path, (db) => db.all("SELECT state FROM celery_ts_messages"));
    expect(reserved()).toEqual([{ state: "reserved" }]);
    await delivery.ack();
    expect(reserved()).toEqual([]);
    await c.stop();
    await transport.close();
    await backend.close();
  });
});
