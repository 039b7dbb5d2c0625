import type {
  CoordinationStore,
  Logger,
  ResultBackend,
  RetryPolicy,
  Signals,
  Transport,
} from "@celery-ts/core";

/** Publishing retries: a few quick attempts, so a broker blip does not fail a web request. */
export const DEFAULT_PUBLISH_RETRY: Readonly<Required<RetryPolicy>> = Object.freeze({
  maxRetries: 3,
  delay: 0.2,
  backoff: "exponential",
  maxDelay: 2,
  jitter: true,
});

export interface ClientOptions {
  /**
   * Send a `task-sent` event for each task sent, as Celery's `task_send_sent_event`, for
   * `celery events` and Flower.
   * @default false
   */
  sendTaskEvents?: boolean;
  /**
   * The broker: a `Transport`, or a URL (`redis://127.0.0.1:6379/0`, `sqlite:///queue.db`,
   * `amqp://guest:guest@127.0.0.1:5672//`, `memory://name`) resolved by the scheme's driver
   * package on first use. A transport given as an object stays yours to close.
   * @default the `CELERY_BROKER_URL` environment variable, as Celery and the `celery-ts` CLI read it
   */
  broker?: Transport | string;
  /**
   * Where task states and results are read: a `ResultBackend` or a URL (`sqlite:///results.db`,
   * `redis://127.0.0.1:6379/1`). Without one, tasks can still be sent; reading a result rejects
   * with `NO_RESULT_BACKEND`.
   * @default the `CELERY_RESULT_BACKEND` environment variable when set, else none
   */
  backend?: ResultBackend | string;
  /** Where the client reports retries and sends (it never writes to the console). @default silentLogger */
  logger?: Logger;
  /**
   * How publishing is retried when the broker fails with a retryable error (a lost connection);
   * `false` sends once. Delays are seconds. Unset fields take the defaults.
   * @default DEFAULT_PUBLISH_RETRY: 3 retries, 0.2 s doubling up to 2 s, with jitter
   */
  publishRetry?: RetryPolicy | false;
  /** Where the client sends `beforeTaskPublish` and `afterTaskPublish`. @default the process-wide `signals` */
  signals?: Signals;
  /**
   * The coordination store that unique tasks (`unique: { key, ttl }`) are claimed in, shared by
   * every producer: an object or a URL. Only opened for a unique send.
   * @default the broker's URL (Redis and SQLite brokers have a store)
   */
  store?: CoordinationStore | string;
}
