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
  /** Aborted on close(): a backoff under way ends at once, and no timer keeps the process up. */
  signal?: AbortSignal;
  /**
   * Never give up while `wanted()`: `reconnectAttempts` bounds the connection's attempts, not
   * this. Once that many fail in a row, an error is logged and it keeps trying, at the capped
   * backoff. @default false: reject then.
   */
  keepTrying?: boolean;
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
  const { policy, logger, what, signal } = options;
  const wanted = (): boolean => !signal?.aborted && options.wanted();
  for (let failures = 0; wanted();) {
    if (failures > 0) {
      const delay = backoffDelay(failures, { initial: policy.initial, max: policy.max });
      await sleep(toMs(delay), signal);
      if (!wanted()) return;
    }
    try {
      await options.attempt();
      if (failures > 0) logger.info(`amqp: ${what}: done again`, { attempts: failures + 1 });
      return;
    } catch (error) {
      failures++;
      if (!wanted()) return;
      const limit =
        policy.attempts === Infinity || options.keepTrying
          ? ""
          : ` (at most ${policy.attempts} attempts)`;
      const log = failures === 1 ? logger.warn : logger.debug;
      log(`amqp: ${what}: failed; retrying with backoff${limit}`, {
        attempt: failures,
        error: text(error),
      });
      if (failures === policy.attempts && options.keepTrying) {
        logger.error(
          `amqp: ${what}: failed ${failures} times in a row; still retrying with backoff ` +
            "while the connection is up",
          { error: text(error) },
        );
      } else if (failures >= policy.attempts && !options.keepTrying) {
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
