/** When and how often a failed task runs again (Celery's retry_backoff, retry_jitter, ...). */
export interface RetryPolicy {
  /** Retries after the first run; then the task fails. @default 3 */
  maxRetries?: number;
  /** Seconds before the first retry. @default 1 */
  delay?: number;
  /** `"exponential"` doubles the delay on each retry; `"fixed"` keeps it. @default "exponential" */
  backoff?: "exponential" | "fixed";
  /** Seconds the delay never exceeds. @default 600 */
  maxDelay?: number;
  /** Full jitter: a random delay between 0 and the computed one, so retries do not stampede. @default true */
  jitter?: boolean;
}

export const DEFAULT_RETRY_POLICY: Required<RetryPolicy> = {
  maxRetries: 3,
  delay: 1,
  backoff: "exponential",
  maxDelay: 600,
  jitter: true,
};

/** Seconds to wait before retry number `retries + 1`. */
export function retryDelaySeconds(
  policy: RetryPolicy,
  retries: number,
  random: () => number = Math.random,
): number {
  const { delay, backoff, maxDelay, jitter } = { ...DEFAULT_RETRY_POLICY, ...policy };
  const computed = Math.min(maxDelay, backoff === "exponential" ? delay * 2 ** retries : delay);
  return jitter ? random() * computed : computed;
}
