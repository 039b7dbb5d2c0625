import { createChordCounterInMemory } from "./canvas/memory-chords.ts";
import { durationOption, toMs } from "./driver/durations.ts";
import { decodeJson, encodeJson } from "./json.ts";
import type { ResultBackend, ResultMeta, StoreOptions, WaitOptions } from "./result-backend.ts";
import { createResultWaiters, resultTimeoutError } from "./result-waiters.ts";
import { isReadyState } from "./states.ts";

export interface MemoryBackendOptions {
  /** Seconds after which results are forgotten. @default 86400 (one day, as in Celery) */
  expires?: number;
}

interface Entry {
  /** Stored as JSON, as real backends do: what cannot be encoded fails here too. */
  json: string;
  expiresAt: number;
}

/** An in-process result backend for unit tests. */
export function createMemoryBackend(options: MemoryBackendOptions = {}): ResultBackend {
  const defaultExpiry = durationOption("memory", "expires", options.expires, 86_400);
  const entries = new Map<string, Entry>();
  const waiters = createResultWaiters();
  const { chords, groups } = createChordCounterInMemory();

  const read = (taskId: string): ResultMeta | undefined => {
    const entry = entries.get(taskId);
    if (entry && entry.expiresAt <= Date.now()) entries.delete(taskId);
    const json = entries.get(taskId)?.json;
    return json === undefined ? undefined : (decodeJson(json) as ResultMeta);
  };

  return {
    name: "memory",
    chords,
    groups,
    async connect() {},
    async close() {},
    async store(taskId: string, meta: ResultMeta, store: StoreOptions = {}) {
      const json = encodeJson(meta);
      const expires = durationOption("memory", "expires", store.expires, defaultExpiry);
      const expiresAt = Date.now() + toMs(expires);
      entries.set(taskId, { json, expiresAt });
      if (isReadyState(meta.status)) {
        waiters.resolve(taskId, () => decodeJson(json) as ResultMeta);
      }
    },
    async get(taskId) {
      return read(taskId);
    },
    waitFor(taskId: string, options: WaitOptions) {
      const meta = read(taskId);
      if (meta && isReadyState(meta.status)) return Promise.resolve(meta);
      return waiters.wait(taskId, {
        ...options,
        timeoutError: () => resultTimeoutError("memory", taskId, options.timeout),
      });
    },
    async forget(taskId) {
      entries.delete(taskId);
    },
  };
}
