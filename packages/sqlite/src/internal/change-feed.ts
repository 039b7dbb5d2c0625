import {
  closeSync,
  constants,
  openSync,
  utimesSync,
  watch,
  writeFileSync,
  writeSync,
  type FSWatcher,
} from "node:fs";
import { basename, dirname } from "node:path";

/** What a change is about: who in this process it wakes (a change from elsewhere wakes all). */
export type Topic = "messages" | "results" | "broadcasts";

interface Feed {
  readonly path: string;
  readonly listeners: Map<() => void, Topic>;
  watcher: FSWatcher | undefined;
  scheduled: boolean;
  /** The topics of this process's writes among the changes to tell. */
  readonly local: Set<Topic>;
  /** A file event is among the changes to tell. */
  external: boolean;
  /** The database's data version when the file watch last woke the listeners. */
  version: number | undefined;
}

/** One feed per database file in this process, shared by all its connections. */
const feeds = new Map<string, Feed>();
/** Per file, how to read `PRAGMA data_version` on this process's connection (shared-db.ts). */
const versionReaders = new Map<string, () => number>();

/**
 * Registers how to read the data version of the file at `path`: it changes only when another
 * connection commits, so a file event whose version has not moved (our own write, or a WAL
 * write whose commit is not visible yet) wakes nobody. Returns the unregistration, which also
 * closes the file's wake handle.
 */
export function readDataVersionWith(path: string, read: () => number): () => void {
  versionReaders.set(path, read);
  return () => {
    if (versionReaders.get(path) !== read) return;
    versionReaders.delete(path);
    closeWake(path);
  };
}

/** True when another connection committed since the last wake-up, or when we cannot tell. */
function changedElsewhere(feed: Feed): boolean {
  const read = versionReaders.get(feed.path);
  if (!read) return true;
  let version: number;
  try {
    version = read();
  } catch {
    return true;
  }
  if (version === feed.version) return false;
  feed.version = version;
  return true;
}

/** A change: a write of this process (its topic), or a file event (undefined). */
function fire(feed: Feed, topic: Topic | undefined): void {
  if (topic) feed.local.add(topic);
  else feed.external = true;
  // Coalesce: one burst of writes (or WAL events) wakes each listener once, on a later tick, so
  // a writer never runs a consumer's code in its own call stack.
  if (feed.scheduled) return;
  feed.scheduled = true;
  setImmediate(() => {
    feed.scheduled = false;
    const all = feed.external && changedElsewhere(feed);
    const local = new Set(feed.local);
    feed.external = false;
    feed.local.clear();
    for (const [listener, topic] of feed.listeners) if (all || local.has(topic)) listener();
  });
}

/**
 * The file whose timestamps a writer of this library touches after each commit that may wake
 * someone (a publish, a stored result): `<database>-celery-ts-wake`, next to the database.
 */
const wakeFile = (path: string): string => `${path}-celery-ts-wake`;

/**
 * Every commit from any process appends to the database's `-wal` file, so watching it wakes
 * pollers in other processes at once. But SQLite writes the WAL's frames before it makes the
 * commit visible, so a reader woken by them can look too early and see nothing; our own writers
 * therefore also touch the wake file once their commit is visible, and that wake-up cannot come
 * too early. The directory is watched, not the files: SQLite deletes and recreates the `-wal`
 * file. Where watching is unsupported this returns undefined and pollers keep polling, which only
 * costs latency.
 */
function watchWal(path: string, feed: Feed): FSWatcher | undefined {
  const wal = `${basename(path)}-wal`;
  const wake = basename(wakeFile(path));
  try {
    const watcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
      if (filename === null || filename === wal || filename === wake) fire(feed, undefined);
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

/** The wake file of a database file this process has open, held open to be written. */
interface WakeHandle {
  fd: number;
  openedAt: number;
}
const wakeHandles = new Map<string, WakeHandle>();
/**
 * How long a wake file's descriptor is used before it is opened again by name: should the file
 * be deleted meanwhile, writes to the old one wake no one (other processes then poll) until then.
 */
const REOPEN_WAKE_MS = 1_000;
const oneByte = Buffer.alloc(1);

function closeWake(path: string): void {
  const handle = wakeHandles.get(path);
  if (!handle) return;
  wakeHandles.delete(path);
  try {
    closeSync(handle.fd);
  } catch {
    // Closed already.
  }
}

/**
 * Wakes the file watchers of other processes after a commit.
 *
 * On Linux: one byte written over the wake file's first byte, through a descriptor kept open.
 * inotify raises a modify event on every write, and a write updates the file's times at most
 * once per clock tick, where setting them (utimes) changed the inode, and so the file system's
 * journal, at every commit.
 *
 * Elsewhere, by name (utimes): macOS watches with FSEvents, which reports a content change only
 * once the writing descriptor is closed, so writes through a descriptor kept open would wake
 * other processes late or never (they would fall back to their poll), while a change of the
 * times is reported at once. On Windows, whether a write through a handle kept open is reported
 * promptly is doubtful (NTFS may defer the change notice), so it keeps utimes too.
 */
const WRITE_TO_WAKE = process.platform === "linux";

function touch(path: string): void {
  if (!WRITE_TO_WAKE || !versionReaders.has(path)) return touchByName(path);
  const now = Date.now();
  let handle = wakeHandles.get(path);
  if (handle && now - handle.openedAt >= REOPEN_WAKE_MS) {
    closeWake(path);
    handle = undefined;
  }
  try {
    if (!handle) {
      const fd = openSync(wakeFile(path), constants.O_WRONLY | constants.O_CREAT);
      handle = { fd, openedAt: now };
      wakeHandles.set(path, handle);
    }
    writeSync(handle.fd, oneByte, 0, 1, 0);
  } catch {
    closeWake(path);
    touchByName(path);
  }
}

/** The wake-up by the file's name: a timestamp update, or the file created. */
function touchByName(path: string): void {
  const file = wakeFile(path);
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
 * others all of them (one touch of the wake file for all the topics). Call it after the commit.
 */
export function notifyChange(path: string, ...topics: Topic[]): void {
  touch(path);
  const feed = feeds.get(path);
  if (feed) for (const topic of topics) fire(feed, topic);
}

/**
 * Calls `listener` (coalesced, asynchronously) when the database at `path` may have changed: on
 * this process's writes of `topic`, and on every change from elsewhere.
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
      external: false,
      version: undefined,
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
      feeds.delete(path);
    }
  };
}
