import { CeleryTsError } from "./errors.ts";
import { decodeJson, encodeJson } from "./json.ts";
import type { ResultBackend, ResultMeta, StoreOptions, WaitOptions } from "./result-backend.ts";
import { isReadyState } from "./states.ts";

export interface MemoryBackendOptions {
  /** Results are forgotten after this long. @default 86_400_000 (one day, as in Celery) */
  expiresInMs?: number;
}

interface Entry {
  /** Stored as JSON, as real backends do: what cannot be encoded fails here too. */
  json: string;
  expiresAt: number;
}

/** An in-process result backend for unit tests. */
export function createMemoryBackend(options: MemoryBackendOptions = {}): ResultBackend {
  const defaultExpiry = options.expiresInMs ?? 86_400_000;
  const entries = new Map<string, Entry>();
  const waiters = new Map<string, Set<(meta: ResultMeta) => void>>();

  const read = (taskId: string): ResultMeta | undefined => {
    const entry = entries.get(taskId);
    if (entry && entry.expiresAt <= Date.now()) entries.delete(taskId);
    const json = entries.get(taskId)?.json;
    return json === undefined ? undefined : (decodeJson(json) as ResultMeta);
  };

  return {
    name: "memory",
    async connect() {},
    async close() {},
    async store(taskId: string, meta: ResultMeta, store: StoreOptions = {}) {
      const json = encodeJson(meta);
      const expiresAt = Date.now() + (store.expiresInMs ?? defaultExpiry);
      entries.set(taskId, { json, expiresAt });
      if (isReadyState(meta.status)) {
        waiters.get(taskId)?.forEach((wake) => wake(decodeJson(json) as ResultMeta));
      }
    },
    async get(taskId) {
      return read(taskId);
    },
    waitFor(taskId: string, { timeoutMs, signal }: WaitOptions) {
      const meta = read(taskId);
      if (meta && isReadyState(meta.status)) return Promise.resolve(meta);
      return new Promise<ResultMeta>((resolve, reject) => {
        const set = waiters.get(taskId) ?? new Set();
        waiters.set(taskId, set);
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          set.delete(wake);
          if (set.size === 0) waiters.delete(taskId);
        };
        const wake = (ready: ResultMeta): void => {
          done();
          resolve(ready);
        };
        const onAbort = (): void => {
          done();
          reject(signal?.reason);
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new CeleryTsError("TIMEOUT", `no result for task ${taskId} within ${timeoutMs} ms`, {
              pkg: "memory",
              retryable: true,
            }),
          );
        }, timeoutMs);
        set.add(wake);
        if (signal?.aborted) onAbort();
        else signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    async forget(taskId) {
      entries.delete(taskId);
    },
  };
}
