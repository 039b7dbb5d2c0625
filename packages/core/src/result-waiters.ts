import { toMs } from "./driver/durations.ts";
import { CeleryTsError } from "./errors.ts";
import { decodeJson } from "./json.ts";
import type { ResultMeta, WaitOptions } from "./result-backend.ts";

/** The longest timer Node runs (about 24.8 days), in seconds: a longer timeout waits this long. */
const MAX_TIMEOUT_SECONDS = 2_147_483.647;

/** A backend's `waitFor()` timeout: the retryable `TIMEOUT` error every backend rejects with. */
export function resultTimeoutError(
  pkg: string,
  taskId: string,
  timeout: number,
  detail = "",
): CeleryTsError {
  return new CeleryTsError("TIMEOUT", `no result for task ${taskId} within ${timeout} s${detail}`, {
    pkg,
    retryable: true,
  });
}

/**
 * Decodes a stored result: text that is not JSON is a `MALFORMED_MESSAGE` error of `pkg`, saying
 * `<what> is not JSON (…)`; `what` names where it came from ("the stored result of task …").
 */
export function decodeStoredResult(text: string, what: string, pkg: string): ResultMeta {
  try {
    return decodeJson(text) as ResultMeta;
  } catch (error) {
    throw new CeleryTsError(
      "MALFORMED_MESSAGE",
      `${what} is not JSON (${(error as Error).message})`,
      { pkg, cause: error },
    );
  }
}

export interface WaitRequest extends WaitOptions {
  /** What a waiter rejects with once `timeout` has passed. */
  timeoutError: () => unknown;
}

/**
 * The pending `waitFor()` calls of a result backend, by key (a task id, a Redis key): the part
 * every backend needs, whatever tells it that a result arrived (a poll, pub/sub, a reply queue).
 */
export interface ResultWaiters {
  /** Waits until `resolve(key, …)`, rejecting with `timeoutError()` or the signal's reason. */
  wait(key: string, request: WaitRequest): Promise<ResultMeta>;
  /**
   * Resolves every waiter of `key`, each with its own copy: callers may mutate what they get. A
   * `copy` that throws (a stored result that cannot be decoded) rejects the waiters of `key`
   * with its error, and no other waiter.
   */
  resolve(key: string, copy: () => ResultMeta): void;
  /** Rejects every waiter, e.g. when the backend closes. */
  rejectAll(error: unknown): void;
  has(key: string): boolean;
  /** The keys that have waiters. */
  keys(): string[];
}

interface Waiter {
  resolve(meta: ResultMeta): void;
  reject(error: unknown): void;
}

export interface ResultWaitersOptions {
  /** Called when the last waiter of a key is gone (resolved, timed out or aborted). */
  onIdle?: (key: string) => void;
}

export function createResultWaiters(options: ResultWaitersOptions = {}): ResultWaiters {
  const waiters = new Map<string, Set<Waiter>>();
  return {
    wait(key, { timeout, signal, timeoutError }) {
      return new Promise<ResultMeta>((resolve, reject) => {
        const set = waiters.get(key) ?? new Set<Waiter>();
        waiters.set(key, set);
        const settled =
          <T>(settle: (value: T) => void) =>
          (value: T): void => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", onAbort);
            set.delete(waiter);
            if (set.size === 0 && waiters.get(key) === set) {
              waiters.delete(key);
              options.onIdle?.(key);
            }
            settle(value);
          };
        const waiter: Waiter = { resolve: settled(resolve), reject: settled(reject) };
        const onAbort = (): void => waiter.reject(signal?.reason);
        const timer = setTimeout(
          () => waiter.reject(timeoutError()),
          toMs(Math.min(Math.max(0, timeout), MAX_TIMEOUT_SECONDS)),
        );
        set.add(waiter);
        if (signal?.aborted) onAbort();
        else signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    resolve(key, copy) {
      for (const waiter of [...(waiters.get(key) ?? [])]) {
        let meta: ResultMeta;
        try {
          meta = copy();
        } catch (error) {
          waiter.reject(error);
          continue;
        }
        waiter.resolve(meta);
      }
    },
    rejectAll(error) {
      for (const set of [...waiters.values()]) {
        for (const waiter of [...set]) waiter.reject(error);
      }
    },
    has: (key) => waiters.has(key),
    keys: () => [...waiters.keys()],
  };
}
