import { CeleryTsError } from "./errors.ts";
import {
  storeIncrementBy,
  storeTtlMs,
  type CompareAndSetOptions,
  type CoordinationStore,
  type IncrementOptions,
  type StoreEntry,
  type TtlOptions,
} from "./coordination-store.ts";

interface Slot {
  value: string;
  /** Epoch milliseconds, or undefined: never. */
  expiresAt: number | undefined;
}

/** The keys of an in-memory store; several store handles (each closed on its own) may share one. */
export class MemoryStoreSpace {
  /** @internal */
  readonly slots = new Map<string, Slot>();
}

export interface MemoryStoreOptions {
  /** The keys this handle works on, shared with other handles. @default a new, private space */
  space?: MemoryStoreSpace;
  /** The clock, in epoch milliseconds (tests move it). @default Date.now */
  now?: () => number;
}

/** Reading (expired slots are gone), writing with a ttl, and reading a counter, over `slots`. */
function slotAccess(slots: Map<string, Slot>, now: () => number) {
  const read = (key: string): Slot | undefined => {
    const slot = slots.get(key);
    if (slot?.expiresAt !== undefined && slot.expiresAt <= now()) {
      slots.delete(key);
      return undefined;
    }
    return slot;
  };
  const write = (key: string, value: string, ttl: TtlOptions | undefined): void => {
    const ttlMs = storeTtlMs(ttl);
    slots.set(key, { value, expiresAt: ttlMs === undefined ? undefined : now() + ttlMs });
  };
  const counter = (key: string): number => {
    const value = read(key)?.value;
    if (value === undefined) return 0;
    const n = Number(value);
    if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n)) {
      throw new CeleryTsError("CONFIG", `the value at ${JSON.stringify(key)} is not a counter`);
    }
    return n;
  };
  return { read, write, counter };
}

/**
 * A coordination store in this process's memory, for tests and single-process apps. Every
 * operation is atomic because it runs to completion before another starts.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): CoordinationStore {
  const now = options.now ?? Date.now;
  const { slots } = options.space ?? new MemoryStoreSpace();
  let closed = false;

  const ensureOpen = (): void => {
    if (closed) throw new CeleryTsError("CLOSED", "the memory coordination store is closed");
  };
  const { read, write, counter } = slotAccess(slots, now);

  return {
    name: "memory",
    async connect() {
      ensureOpen();
    },
    async close() {
      closed = true;
    },
    async get(key) {
      ensureOpen();
      return read(key)?.value;
    },
    async ttl(key) {
      ensureOpen();
      const slot = read(key);
      if (!slot) return undefined;
      return slot.expiresAt === undefined ? Infinity : (slot.expiresAt - now()) / 1000;
    },
    async setIfAbsent(key, value, ttl?: TtlOptions) {
      ensureOpen();
      storeTtlMs(ttl);
      if (read(key)) return false;
      write(key, value, ttl);
      return true;
    },
    async compareAndSet(key, expected, value, cas: CompareAndSetOptions = {}) {
      ensureOpen();
      storeTtlMs(cas);
      if (cas.fence && counter(cas.fence.key) !== cas.fence.token) return false;
      if (read(key)?.value !== expected) return false;
      write(key, value, cas);
      return true;
    },
    async deleteIfEquals(key, expected) {
      ensureOpen();
      if (read(key)?.value !== expected) return false;
      slots.delete(key);
      return true;
    },
    async list(prefix) {
      ensureOpen();
      const entries: StoreEntry[] = [];
      for (const key of [...slots.keys()].sort()) {
        const slot = key.startsWith(prefix) ? read(key) : undefined;
        if (slot) entries.push({ key, value: slot.value });
      }
      return entries;
    },
    async increment(key, increment?: IncrementOptions) {
      ensureOpen();
      const by = storeIncrementBy(increment);
      const ttlMs = storeTtlMs(increment);
      const slot = read(key);
      const value = counter(key) + by;
      const expiresAt = slot?.expiresAt ?? (ttlMs === undefined ? undefined : now() + ttlMs);
      slots.set(key, { value: String(value), expiresAt });
      return value;
    },
  };
}
