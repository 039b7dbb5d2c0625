import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";
import {
  MemoryBroker,
  MemoryStoreSpace,
  createMemoryBackend,
  createMemoryStore,
  createMemoryTransport,
  createTaskMessage,
  encodeTaskMessage,
  type CoordinationStore,
  type ResultBackend,
  type ResultMeta,
  type AnyTaskDefinition,
  type TaskMessageInput,
  type Transport,
} from "@celery-ts/core";
import { createSqliteBackend, createSqliteStore, createSqliteTransport } from "@celery-ts/sqlite";
import { createWorker, type Worker, type WorkerOptions } from "../src/index.ts";

/** One broker and backend for a worker test, on each transport the worker runs against. */
export interface Setup {
  name: string;
  /** One queue per test. */
  queue: string;
  /** A new connection to the test's broker; `close()` closes it. */
  transport(): Transport;
  backend: ResultBackend;
  /** A new connection to the test's coordination store; `close()` closes it. */
  store(): CoordinationStore;
  /** Puts messages on the broker as stored text (kombu envelopes, malformed or not), in order. */
  injectRaw(queue: string, raw: string | readonly string[]): Promise<void>;
  /** Closes every connection the setup opened and removes what it created. */
  close(): Promise<void>;
}

/** How quickly SQLite consumers look for due messages and expired leases, and waiters for results. */
const SQLITE_POLL_INTERVAL = 0.02;
/** Short, so a message held by a consumer that died comes back within a test. */
const SQLITE_VISIBILITY_TIMEOUT = 1;

/** The parts of better-sqlite3 the harness uses (the worker has no @types for it). */
interface RawDatabase {
  exec(sql: string): unknown;
  prepare(sql: string): { run(...params: unknown[]): unknown };
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}

// better-sqlite3, the library @celery-ts/sqlite uses, never node:sqlite: two SQLite libraries in
// one process break each other's POSIX locks and corrupt the file.
const RawDatabase = createRequire(import.meta.url)("better-sqlite3") as new (
  path: string,
) => RawDatabase;

export const setups: { name: string; create(): Promise<Setup> }[] = [
  {
    name: "memory",
    async create() {
      const broker = new MemoryBroker();
      const space = new MemoryStoreSpace();
      const transports: Transport[] = [];
      return {
        name: "memory",
        queue: `worker-test-${randomUUID()}`,
        transport: () => {
          const transport = createMemoryTransport({ broker });
          transports.push(transport);
          return transport;
        },
        backend: createMemoryBackend(),
        store: () => createMemoryStore({ space }),
        injectRaw: async (queue, raw) => {
          for (const text of typeof raw === "string" ? [raw] : raw) broker.push(queue, text);
        },
        close: async () => {
          await Promise.all(transports.map((transport) => transport.close()));
        },
      };
    },
  },
  {
    name: "sqlite",
    async create() {
      const dir = await mkdtemp(join(tmpdir(), "celery-ts-worker-"));
      const path = join(dir, "celery.db");
      const transports: Transport[] = [];
      const transport = (): Transport => {
        const created = createSqliteTransport({
          path,
          visibilityTimeout: SQLITE_VISIBILITY_TIMEOUT,
          pollInterval: SQLITE_POLL_INTERVAL,
        });
        transports.push(created);
        return created;
      };
      const backend = createSqliteBackend({ path, pollInterval: SQLITE_POLL_INTERVAL });
      const stores: CoordinationStore[] = [];
      // Opening a transport creates the tables, so raw rows can go in before any worker starts.
      await transport().connect();
      await backend.connect();
      type Raw = { db: RawDatabase; insert: (queue: string, texts: readonly string[]) => void };
      let raw: Raw | undefined;
      const rawDb = (): Raw => {
        if (raw) return raw;
        // A connection of its own, as an operator's tool or a foreign producer would have.
        const db = new RawDatabase(path);
        db.exec("PRAGMA synchronous = NORMAL");
        const insert = db.prepare("INSERT INTO celery_ts_messages (queue, payload) VALUES (?, ?)");
        raw = {
          db,
          insert: db.transaction((queue: string, texts: readonly string[]) => {
            for (const text of texts) insert.run(queue, text);
          }),
        };
        return raw;
      };
      return {
        name: "sqlite",
        queue: `worker-test-${randomUUID()}`,
        transport,
        backend,
        store: () => {
          const store = createSqliteStore({ path });
          stores.push(store);
          return store;
        },
        injectRaw: async (queue, texts) => {
          rawDb().insert(queue, typeof texts === "string" ? [texts] : texts);
        },
        close: async () => {
          await Promise.all(transports.map((created) => created.close()));
          await Promise.all(stores.map((store) => store.close()));
          await backend.close();
          raw?.db.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

/** A running worker plus a producer connection on the same broker. */
export class Fixture {
  readonly setup: Setup;
  readonly queue: string;
  readonly producer: Transport;
  readonly worker: Worker;

  constructor(setup: Setup, tasks: AnyTaskDefinition[], options: Partial<WorkerOptions> = {}) {
    this.setup = setup;
    this.queue = setup.queue;
    this.producer = setup.transport();
    this.worker = createWorker({
      broker: setup.transport(),
      backend: setup.backend,
      tasks,
      queues: [this.queue],
      shutdownTimeout: 5,
      ...options,
    });
  }

  async send(input: TaskMessageInput): Promise<string> {
    const message = createTaskMessage(input);
    await this.producer.publish(encodeTaskMessage(message), {
      queue: this.queue,
      ...(input.eta && { availableAt: input.eta.getTime() }),
      ...(input.priority !== undefined && { priority: input.priority }),
    });
    return message.headers.id;
  }

  wait(id: string, timeoutMs = 10_000): Promise<ResultMeta> {
    return this.setup.backend.waitFor(id, { timeout: timeoutMs / 1000 });
  }
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Inserts stored texts on a queue of a SQLite broker file, as a foreign producer would. */
export function insertRaw(path: string, queue: string, texts: readonly string[]): void {
  const db = new RawDatabase(path);
  try {
    const insert = db.prepare("INSERT INTO celery_ts_messages (queue, payload) VALUES (?, ?)");
    db.transaction(() => {
      for (const text of texts) insert.run(queue, text);
    })();
  } finally {
    db.close();
  }
}

/**
 * A describe block's worker fixtures: a fresh setup before each test, and every worker started
 * through `start` stopped (then the setup closed) after it.
 */
export function useWorkers(create: () => Promise<Setup>): {
  setup(): Setup;
  start(tasks: AnyTaskDefinition[], options?: Partial<WorkerOptions>): Promise<Fixture>;
} {
  let current: Setup | undefined;
  const fixtures: Fixture[] = [];
  beforeEach(async () => {
    current = await create();
  });
  afterEach(async () => {
    await Promise.all(fixtures.splice(0).map((f) => f.worker.stop()));
    await current?.close();
  });
  const setup = (): Setup => {
    if (!current) throw new Error("useWorkers: setup() is only there inside a test");
    return current;
  };
  return {
    setup,
    async start(tasks, options = {}) {
      const fixture = new Fixture(setup(), tasks, options);
      fixtures.push(fixture);
      await fixture.worker.start();
      return fixture;
    },
  };
}
