import { CeleryTsError, isCeleryTsError, type Logger } from "@celery-ts/core";
import { sleep, toMs } from "@celery-ts/core/driver";
import { redactUrl } from "../setup/options.ts";

/**
 * Seconds before startup attempt `attempt + 1`: 1 s doubling up to 10 s, less up to half of it at
 * random, so that a fleet started together does not retry in step.
 */
function startupDelay(attempt: number): number {
  const base = Math.min(10, 2 ** (attempt - 1));
  return base * (0.5 + Math.random() / 2);
}

export interface ConnectOnStartup {
  /** What is connected, in logs and errors: "broker", "result backend". */
  what: string;
  /** Where, for the log: "at <the URL without its password>", or "(the redis transport given)". */
  where: string;
  connect: () => Promise<void>;
  log: Logger;
  /**
   * Keep trying with backoff while the server cannot be reached (Celery's
   * `broker_connection_retry_on_startup`); false: fail at once with a clear error.
   */
  retry: boolean;
  /** Aborted when the worker stops meanwhile: the wait ends and `connected` resolves false. */
  signal?: AbortSignal;
}

const reasonOf = (error: unknown): string =>
  error instanceof Error ? error.message.replace(/^\[celery-ts:[^\]]*\] /, "") : String(error);

/**
 * Connects at startup. A server that cannot be reached yet (a retryable error) is tried again,
 * with backoff and without limit, each failed attempt logged with the URL, the attempt's number
 * and the wait before the next; with `retry: false` the first such failure is a `CONNECTION`
 * error that says how to wait instead. Any other error (bad credentials, a bad URL) is thrown at
 * once. Resolves true once connected, false when `signal` aborted first.
 */
export async function connectOnStartup(options: ConnectOnStartup): Promise<boolean> {
  const { what, where, connect, log, retry, signal } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      await connect();
      if (attempt > 1) log.info(`connected to the ${what} ${where} (attempt ${attempt})`);
      return true;
    } catch (error) {
      if (signal?.aborted) return false;
      if (!isCeleryTsError(error) || !error.retryable) throw error;
      if (!retry) {
        throw new CeleryTsError(
          "CONNECTION",
          `cannot connect to the ${what} ${where}: ${reasonOf(error)}; not retrying, because ` +
            "retrying at startup is turned off (brokerConnectionRetryOnStartup: false, " +
            "--broker-connection-retry-on-startup off): start the server first, or turn it on",
          { pkg: "worker", cause: error, retryable: false },
        );
      }
      const delay = startupDelay(attempt);
      log.warn(
        `cannot connect to the ${what} ${where} (attempt ${attempt}): ${reasonOf(error)}; ` +
          `trying again in ${delay.toFixed(1)} s`,
        { attempt, retryInSeconds: Math.round(delay * 10) / 10 },
      );
      await sleep(toMs(delay), signal);
      if (signal?.aborted) return false;
    }
  }
}

/** One thing to connect at startup: `given` is what the user passed (a URL, or an object). */
export interface StartupPart {
  what: string;
  given: unknown;
  /** For an object: "redis transport", "sqlite store". */
  name: string;
  connect: () => Promise<void>;
}

/**
 * Connects each part in turn with {@link connectOnStartup}, naming a URL (without its password)
 * or the object given; false when `signal` aborted first.
 */
export async function connectAllOnStartup(
  parts: readonly StartupPart[],
  options: Pick<ConnectOnStartup, "log" | "retry" | "signal">,
): Promise<boolean> {
  for (const { what, given, name, connect } of parts) {
    const where = typeof given === "string" ? `at ${redactUrl(given)}` : `(the ${name} given)`;
    if (!(await connectOnStartup({ ...options, what, where, connect }))) return false;
  }
  return true;
}
