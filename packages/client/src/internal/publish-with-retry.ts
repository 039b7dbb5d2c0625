import { setTimeout as sleep } from "node:timers/promises";
import {
  isCeleryTsError,
  retryDelaySeconds,
  type CeleryTsError,
  type Logger,
  type RetryPolicy,
} from "@celery-ts/core";
import { clientError } from "./errors.ts";

export interface PublishAttempt {
  /** What is being published, for messages: `task tasks.add[<id>] to queue "celery" on the redis broker`. */
  what: string;
  policy: Required<RetryPolicy> | false;
  logger: Logger;
  fields: Record<string, unknown>;
}

/**
 * Runs `publish`, retrying errors marked `retryable` (a broker restarting, a dropped connection)
 * per the policy. Anything else, or the last failure, rejects with an error that says what was
 * being sent where, keeping the broker's error as `cause`.
 */
export async function publishWithRetry(
  publish: () => Promise<void>,
  { what, policy, logger, fields }: PublishAttempt,
): Promise<void> {
  for (let retries = 0; ; retries++) {
    try {
      await publish();
      return;
    } catch (error) {
      const retryable = isCeleryTsError(error) && error.retryable;
      if (!retryable || !policy || retries >= policy.maxRetries) {
        throw publishError(error, what, retries + 1);
      }
      const delay = retryDelaySeconds(policy, retries);
      logger.warn("publishing failed; retrying", {
        ...fields,
        attempt: retries + 1,
        retryInSeconds: delay,
        error: (error as Error).message,
      });
      await sleep(delay * 1000);
    }
  }
}

function publishError(cause: unknown, what: string, attempts: number): CeleryTsError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const tries = attempts === 1 ? "" : ` after ${attempts} attempts`;
  return clientError(
    // Keep the broker's code (CONNECTION, CLOSED, ...) so callers can match on it; a driver that
    // throws raw errors broke its contract, and a lost connection is the likeliest reason.
    isCeleryTsError(cause) ? cause.code : "CONNECTION",
    `could not send ${what}${tries}: ${reason}`,
    { cause, retryable: isCeleryTsError(cause) && cause.retryable },
  );
}
