/** One SQLite connection per database file and process, and the group commit of its writes. */
import Database from "better-sqlite3";
import { notifyChange, readDataVersionWith, type Topic } from "./change-feed.ts";
import { createCheckpointer, type Checkpointer } from "./checkpointer.ts";
import { BUSY_TIMEOUT_MS, isBusy, mapSqliteError } from "./errors.ts";

/**
 * The first wait for a lock another connection holds, and the longest, in milliseconds. The
 * writes waited for last a fraction of a millisecond (a worker's group commit of a few dozen
 * results and acks), so the waits stay short: a wait that doubled up to 2 ms overshot the lock's
 * release by up to as much, and a failed try costs about 7 µs of CPU.
 */
const FIRST_BUSY_WAIT_MS = 0.05;
const MAX_BUSY_WAIT_MS = 0.25;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * A checkpoint (copying the WAL's pages into the database, with its fsyncs) runs after every
 * CHECKPOINT_EVERY group commits of this process, on a thread of its own (see checkpointer.ts).
 * SQLite's automatic checkpoint runs inside the commit that crosses its threshold: the send,
 * claim or stored result that made it waited those milliseconds (and a round trip holds three
 * commits). It stays, at a threshold our own checkpoints do not reach, for very large
 * transactions.
 */
const CHECKPOINT_EVERY = 100;
const AUTO_CHECKPOINT_PAGES = 10_000;

/**
 * Runs `attempt` until it does not fail on a lock held by another connection, for up to
 * BUSY_TIMEOUT_MS. SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries, far longer
 * than the writes it waits for (tens of microseconds): under contention (a producer and its
 * workers on one file) most of a worker's time went to those sleeps. This one starts at 50 µs
 * and waits at most 250 µs between tries.
 * Safe because each attempt is one statement or one transaction, rolled back on failure.
 */
export function retryWhileBusy<T>(attempt: () => T): T {
  let wait = FIRST_BUSY_WAIT_MS;
  const deadline = performance.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      return attempt();
    } catch (error) {
      if (!isBusy(error) || performance.now() >= deadline) throw error;
    }
    Atomics.wait(sleeper, 0, 0, wait);
    wait = Math.min(wait * 2, MAX_BUSY_WAIT_MS);
  }
}

interface Write {
  run(): unknown;
  /** Whom to wake once committed. */
  notify: Topic | undefined;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  outcome?: { ok: true; value: unknown } | { ok: false; error: unknown };
}

/** A database file's connection in this process, shared by its transport, backend and the rest. */
export interface SharedDb {
  readonly db: Database.Database;
  /**
   * Runs `run` in the next group commit: the writes queued in one event-loop turn share one
   * transaction (one WAL append, one lock), each in a savepoint of its own, so a failing write
   * fails alone. Resolves once the transaction is committed.
   */
  write<T>(run: () => T, notify: Topic | undefined): Promise<T>;
  release(): void;
}

interface Entry {
  db: Database.Database;
  refs: number;
  queue: Write[];
  scheduled: boolean;
  /** Runs the writes: one alone as it is (its own statement or transaction), several in one. */
  commit: (writes: Write[]) => void;
  /** Group commits since the last checkpoint. */
  commits: number;
  checkpointer: Checkpointer;
  unregisterVersion: () => void;
}

const entries = new Map<string, Entry>();

function open(path: string): Entry {
  // No busy timeout: retryWhileBusy() waits for locks, in shorter steps than SQLite's.
  const db = new Database(path, { timeout: 0 });
  try {
    // WAL lets readers run beside the one writer (other processes included); NORMAL is safe
    // with WAL and skips an fsync per commit.
    retryWhileBusy(() =>
      db.exec(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; " +
          `PRAGMA wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES};`,
      ),
    );
  } catch (error) {
    db.close();
    throw error;
  }
  // Writes rarely fail: a group first runs without a savepoint per write (two statements each
  // saved); if one fails, the transaction is rolled back and run again with savepoints, so that
  // the failing write fails alone.
  const plain = db.transaction((writes: Write[]) => {
    for (const write of writes) write.outcome = { ok: true, value: write.run() };
  });
  const savepoint = db.transaction((write: Write) => write.run());
  const group = db.transaction((writes: Write[]) => {
    for (const write of writes) {
      try {
        write.outcome = { ok: true, value: savepoint(write) };
      } catch (error) {
        write.outcome = { ok: false, error: mapSqliteError(error, path) };
      }
    }
  });
  const commit = (writes: Write[]): void => {
    if (writes.length > 1) {
      try {
        return plain.immediate(writes);
      } catch (error) {
        if (isBusy(error)) throw error;
        return group.immediate(writes);
      }
    }
    const [write] = writes as [Write];
    try {
      write.outcome = { ok: true, value: write.run() };
    } catch (error) {
      if (isBusy(error)) throw error;
      write.outcome = { ok: false, error: mapSqliteError(error, path) };
    }
  };
  const dataVersion = db.prepare("PRAGMA data_version").pluck();
  const unregisterVersion = readDataVersionWith(path, () => dataVersion.get() as number);
  // PASSIVE: it waits for no reader or writer, and copies what it can. On this thread only
  // once the checkpointer's thread failed (which it reports once, as a process warning).
  const passive = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
  const checkpointer = createCheckpointer(path, () => {
    try {
      if (db.open) passive.get();
    } catch {
      // Another connection is checkpointing, or the file is busy: a later checkpoint copies it.
    }
  });
  return {
    db,
    refs: 0,
    queue: [],
    scheduled: false,
    commit,
    commits: 0,
    checkpointer,
    unregisterVersion,
  };
}

function flush(path: string, entry: Entry): void {
  entry.scheduled = false;
  const writes = entry.queue.splice(0);
  if (writes.length === 0) return;
  try {
    retryWhileBusy(() => entry.commit(writes));
  } catch (error) {
    const mapped = mapSqliteError(error, path);
    for (const write of writes) write.reject(mapped);
    return;
  }
  const topics = new Set<Topic>();
  for (const { outcome, notify } of writes) if (outcome?.ok && notify) topics.add(notify);
  if (topics.size > 0) notifyChange(path, ...topics);
  for (const { outcome, resolve, reject } of writes) {
    if (outcome?.ok) resolve(outcome.value);
    else reject(outcome?.error);
  }
  if (++entry.commits < CHECKPOINT_EVERY) return;
  entry.commits = 0;
  entry.checkpointer.run();
}

/** Opens (or shares) the connection to the file at the absolute `path`. */
export function acquireSharedDb(path: string): SharedDb {
  let entry = entries.get(path);
  if (!entry) {
    entry = open(path);
    entries.set(path, entry);
  }
  const shared = entry;
  shared.refs++;
  let released = false;
  return {
    db: shared.db,
    write<T>(run: () => T, notify: Topic | undefined): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        shared.queue.push({ run, notify, resolve: resolve as (value: unknown) => void, reject });
        if (shared.scheduled) return;
        shared.scheduled = true;
        setImmediate(() => flush(path, shared));
      });
    },
    release() {
      if (released) return;
      released = true;
      if (--shared.refs > 0) return;
      flush(path, shared);
      if (entries.get(path) === shared) entries.delete(path);
      shared.unregisterVersion();
      shared.checkpointer.close();
      shared.db.close();
    },
  };
}
