import { retryDelaySeconds } from "../retry-policy.ts";

/** How long to wait before trying a failed broker operation again. Seconds, as every duration. */
export interface BackoffOptions {
  /** The wait after the first failure, in seconds. @default 0.1 */
  initial?: number;
  /** The longest wait, in seconds. @default 5 */
  max?: number;
}

/**
 * Seconds to wait after the `failures`-th consecutive failure (1 for the first): exponential
 * from `initial` up to `max`, with full jitter (a random wait up to that), so that consumers
 * that lost one server do not come back in step. The same formula as task retries
 * (`retryDelaySeconds`); every driver reconnects and retries with it.
 */
export function backoffDelay(
  failures: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { initial = 0.1, max = 5 } = options;
  return retryDelaySeconds(
    { delay: initial, maxDelay: max, backoff: "exponential", jitter: true },
    Math.max(0, failures - 1),
    random,
  );
}
