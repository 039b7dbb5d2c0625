import { utimesSync, watch, writeFileSync, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";

/** What a change is about: whom it wakes, in this process and in the others. */
export type Topic = "messages" | "results" | "broadcasts";

interface Feed {
  readonly path: string;
  readonly listeners: Map<() => void, Topic>;
  watcher: FSWatcher | undefined;
  scheduled: boolean;
  /** The topics of this process's writes among the changes to tell. */
  readonly local: Set<Topic>;
  /** The topics of other processes' wake files among the changes to tell. */
  readonly external: Set<Topic>;
  /** Per topic, the database's data version when a change from elsewhere last woke it. */
  readonly versions: Map<Topic, number>;
  /** A write seen only in the WAL (no wake file touched) wakes every topic then. */
  walTimer: NodeJS.Timeout | undefined;
}

const TOPICS: readonly Topic[] = ["messages", "results", "broadcasts"];

/**
 * How long after a WAL write that no wake file announced (a writer other than this library) the
 * listeners of every topic are woken: one wake-up for all the WAL writes in that time, which
 * under load are a few per commit, and which our own writers announce precisely anyway.
 */
const WAL_FALLBACK_MS = 10;

/** One feed per database file in this process, shared by all its connections. */
const feeds = new Map<string, Feed>();
/** Per file, how to read `PRAGMA data_version` on this process's connection (shared-db.ts). */
const versionReaders = new Map<string, () => number>();

/**
 * Registers how to read the data version of the file at `path`: it changes only when another
 * connection commits, so a file event whose version has not moved (our own write, or a WAL
 * write whose commit is not visible yet) wakes nobody. Returns the unregistration.
 */
export function readDataVersionWith(path: string, read: () => number): () => void {
  versionReaders.set(path, read);
  return () => {
    if (versionReaders.get(path) === read) versionReaders.delete(path);
  };
}

/**
 * The external topics whose listeners to wake: those for which another connection committed
 * since they were last woken (the data version moved), or all of them when we cannot tell.
 */
function changedElsewhere(feed: Feed): Set<Topic> {
  const topics = new Set(feed.external);
  feed.external.clear();
  const read = versionReaders.get(feed.path);
  if (!read || topics.size === 0) return topics;
  let version: number;
  try {
    version = read();
  } catch {
    return topics;
  }
  for (const topic of topics) {
    if (feed.versions.get(topic) === version) topics.delete(topic);
    else feed.versions.set(topic, version);
  }
  return topics;
}

/** A change: a write of this process (`local`), or one from elsewhere. */
function fire(feed: Feed, topics: readonly Topic[], local: boolean): void {
  for (const topic of topics) (local ? feed.local : feed.external).add(topic);
  // Coalesce: one burst of writes (or file events) wakes each listener once, on a later tick, so
  // a writer never runs a consumer's code in its own call stack.
  if (feed.scheduled) return;
  feed.scheduled = true;
  setImmediate(() => {
    feed.scheduled = false;
    const external = changedElsewhere(feed);
    const local = new Set(feed.local);
    feed.local.clear();
    for (const [listener, topic] of feed.listeners) {
      if (local.has(topic) || external.has(topic)) listener();
    }
  });
}

/**
 * The file whose timestamps a writer of this library touches after each commit that may wake
 * someone of `topic` (a publish, a stored result, a broadcast): `<database>-celery-ts-wake-<topic>`,
 * next to the database. Without a topic, the name earlier versions touched for every topic.
 */
const wakeFile = (path: string, topic?: Topic): string =>
  topic ? `${path}-celery-ts-wake-${topic}` : `${path}-celery-ts-wake`;

/**
 * Our writers touch the wake file of their topic once their commit is visible, so a process is
 * woken for what concerns its listeners only, and never too early. Every commit from any process
 * also appends to the database's `-wal` file: a WAL write no wake file announced (another
 * program's) wakes every topic, WAL_FALLBACK_MS later. The directory is watched, not the files:
 * SQLite deletes and recreates the `-wal` file. Where watching is unsupported this returns
 * undefined and pollers keep polling, which only costs latency.
 */
function watchWal(path: string, feed: Feed): FSWatcher | undefined {
  const wal = `${basename(path)}-wal`;
  const byName = new Map<string, readonly Topic[]>([[basename(wakeFile(path)), TOPICS]]);
  for (const topic of TOPICS) byName.set(basename(wakeFile(path, topic)), [topic]);
  const fallback = (): void => {
    feed.walTimer = undefined;
    fire(feed, TOPICS, false);
  };
  try {
    const watcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
      const topics = filename === null ? TOPICS : byName.get(filename);
      if (topics) fire(feed, topics, false);
      else if (filename === wal) feed.walTimer ??= setTimeout(fallback, WAL_FALLBACK_MS);
    });
    watcher.on("error", () => {
      watcher.close();
      feed.watcher = undefined;
    });
    return watcher;
  } catch {
    return undefined;
  }
}

/** Wakes the watchers of other processes: one timestamp update on the topic's wake file. */
function touch(path: string, topic: Topic): void {
  const file = wakeFile(path, topic);
  const now = new Date();
  try {
    utimesSync(file, now, now);
  } catch {
    try {
      writeFileSync(file, "");
    } catch {
      // A directory we cannot write to: other processes find the change by polling.
    }
  }
}

/**
 * Tells the listeners on `path` that the database changed: in this process those of `topics`, in
 * others those of `topics` too (a touch of each topic's wake file). Call it after the commit.
 */
export function notifyChange(path: string, ...topics: Topic[]): void {
  for (const topic of topics) touch(path, topic);
  const feed = feeds.get(path);
  if (feed) fire(feed, topics, true);
}

/**
 * Calls `listener` (coalesced, asynchronously) when the database at `path` may have changed: on
 * writes of `topic` from this process or another, and on a write from elsewhere that did not say
 * what it was about.
 */
export function subscribeToChanges(path: string, topic: Topic, listener: () => void): () => void {
  let feed = feeds.get(path);
  if (!feed) {
    feed = {
      path,
      listeners: new Map(),
      watcher: undefined,
      scheduled: false,
      local: new Set(),
      external: new Set(),
      versions: new Map(),
      walTimer: undefined,
    };
    feed.watcher = watchWal(path, feed);
    feeds.set(path, feed);
  }
  const subscribed = feed;
  subscribed.listeners.set(listener, topic);
  return () => {
    subscribed.listeners.delete(listener);
    if (subscribed.listeners.size === 0 && feeds.get(path) === subscribed) {
      subscribed.watcher?.close();
      clearTimeout(subscribed.walTimer);
      feeds.delete(path);
    }
  };
}
