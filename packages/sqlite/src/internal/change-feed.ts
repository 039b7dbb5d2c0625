import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";

interface Feed {
  readonly listeners: Set<() => void>;
  watcher: FSWatcher | undefined;
  scheduled: boolean;
}

/** One feed per database file in this process, shared by all its connections. */
const feeds = new Map<string, Feed>();

function fire(feed: Feed): void {
  // Coalesce: one burst of writes (or WAL events) wakes each listener once, on a later tick, so
  // a writer never runs a consumer's code in its own call stack.
  if (feed.scheduled) return;
  feed.scheduled = true;
  setImmediate(() => {
    feed.scheduled = false;
    feed.listeners.forEach((listener) => listener());
  });
}

/**
 * Every commit from any process appends to the database's `-wal` file, so watching it wakes
 * pollers in other processes at once. The directory is watched, not the file: SQLite deletes and
 * recreates the `-wal` file. Where watching is unsupported this returns undefined and pollers
 * keep polling, which only costs latency.
 */
function watchWal(path: string, feed: Feed): FSWatcher | undefined {
  const wal = `${basename(path)}-wal`;
  try {
    const watcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
      if (filename === null || filename === wal) fire(feed);
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

/** Tells this process's listeners on `path` that the database may have changed. */
export function notifyChange(path: string): void {
  const feed = feeds.get(path);
  if (feed) fire(feed);
}

/** Calls `listener` (coalesced, asynchronously) when the database at `path` may have changed. */
export function subscribeToChanges(path: string, listener: () => void): () => void {
  let feed = feeds.get(path);
  if (!feed) {
    feed = { listeners: new Set(), watcher: undefined, scheduled: false };
    feed.watcher = watchWal(path, feed);
    feeds.set(path, feed);
  }
  const subscribed = feed;
  subscribed.listeners.add(listener);
  return () => {
    subscribed.listeners.delete(listener);
    if (subscribed.listeners.size === 0 && feeds.get(path) === subscribed) {
      subscribed.watcher?.close();
      feeds.delete(path);
    }
  };
}
