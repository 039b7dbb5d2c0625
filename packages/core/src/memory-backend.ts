import { CeleryTsError } from "./errors.ts";
import { decodeJson, encodeJson } from "./json.ts";
import type { ResultBackend, ResultMeta, StoreOptions, WaitOptions } from "./result-backend.ts";
import { createResultWaiters } from "./result-waiters.ts";
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
  const waiters = createResultWaiters();

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
        timeoutError: () =>
          new CeleryTsError(
            "TIMEOUT",
            `no result for task ${taskId} within ${options.timeoutMs} ms`,
            {
              pkg: "memory",
              retryable: true,
            },
          ),
      });
    },
    async forget(taskId) {
      entries.delete(taskId);
    },
  };
}
