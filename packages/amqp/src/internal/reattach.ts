import type { Logger } from "@celery-ts/core";
import { backoffDelay, connectionError, sleep, toMs } from "@celery-ts/core/driver";
import { PKG } from "./errors.ts";

/** The connection's reconnect settings: backoff in seconds, attempts in a row (Infinity: no limit). */
export interface RetryPolicy {
  initial: number;
  max: number;
  attempts: number;
}

export interface ReattachOptions {
  policy: RetryPolicy;
  logger: Logger;
  /** Who does what, for logs: "rpc backend: read the reply queue \"x\"". */
  what: string;
  /** False once it is no longer needed (closed, done by another call, the session died). */
  wanted(): boolean;
  attempt(): Promise<void>;
}

const text = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Sets something up again on a session (a reply queue read, a broadcast subscription) the way
 * the connection manager re-establishes the connection: after a failure it is tried again with
 * the same backoff, at most `reconnectAttempts` times in a row. It stops quietly once `wanted()`
 * is false (a new session starts over). The first failure is logged as a warning, the others at
 * debug level, and a success after failures at info. Resolves when done or no longer wanted;
 * rejects with a `CONNECTION` error once the attempts are spent.
 */
export async function reattach(options: ReattachOptions): Promise<void> {
  const { policy, logger, what } = options;
  for (let failures = 0; options.wanted();) {
    if (failures > 0) {
      await sleep(toMs(backoffDelay(failures, { initial: policy.initial, max: policy.max })));
      if (!options.wanted()) return;
    }
    try {
      await options.attempt();
      if (failures > 0) logger.info(`amqp: ${what}: done again`, { attempts: failures + 1 });
      return;
    } catch (error) {
      failures++;
      if (!options.wanted()) return;
      const limit = policy.attempts === Infinity ? "" : ` (at most ${policy.attempts} attempts)`;
      const log = failures === 1 ? logger.warn : logger.debug;
      log(`amqp: ${what}: failed; retrying with backoff${limit}`, {
        attempt: failures,
        error: text(error),
      });
      if (failures >= policy.attempts) {
        throw connectionError(
          PKG,
          `${what} failed ${failures} times in a row, the limit ` +
            `(reconnectAttempts): ${text(error)}; raise or remove reconnectAttempts to keep trying`,
          { cause: error },
        );
      }
    }
  }
}
