import { isCeleryTsError, type Logger } from "@celery-ts/core";
import { backoffDelay, sleep, toMs } from "@celery-ts/core/driver";

/** Keeps trying a write that failed because its server is unreachable (see `createKeepTrying`). */
export type KeepTrying = <T>(what: string, write: () => Promise<T>) => Promise<T>;

/**
 * Writes that must not be lost to an outage (a task's result): a retryable failure is tried
 * again with backoff, 0.5 s up to 5 s, until the server is back or `signal` aborts (the shutdown
 * timeout ran out); any other failure is thrown at once. What waits is a message not yet settled,
 * so at most `prefetch` writes wait. The first wait and the recovery are logged once for all
 * the writes waiting together, not once per write.
 */
export function createKeepTrying(log: Logger, signal: AbortSignal): KeepTrying {
  let waiting = 0;
  return async (what, write) => {
    let failures = 0;
    try {
      for (;;) {
        try {
          return await write();
        } catch (error) {
          if (!isCeleryTsError(error) || !error.retryable || signal.aborted) throw error;
          if (failures++ === 0 && waiting++ === 0) {
            log.warn(`could not write ${what}; kept, and retried until the server is back`, {
              error: String(error),
            });
          }
          await sleep(toMs(backoffDelay(failures, { initial: 0.5, max: 5 })), signal);
        }
      }
    } finally {
      if (failures > 0 && --waiting === 0 && !signal.aborted) {
        log.info("the server is back: wrote what was kept during the outage");
      }
    }
  };
}
