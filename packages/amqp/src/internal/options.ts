import type { SocketOptions } from "amqplib";
import { configError } from "./errors.ts";
import { DEFAULT_BROKER_URL, parseAmqpUrl, type BrokerAddress } from "./parse-url.ts";

/** A duration option in milliseconds: positive and finite, or the default when left out. */
export function durationOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw configError(`${name} must be a positive number of milliseconds, got ${String(value)}`);
  }
  return value;
}

/** Options shared by the transport and the rpc backend: where the broker is and how to reach it. */
export interface ConnectionOptions {
  /**
   * The broker, as Celery writes it: `amqp://user:password@host:5672/vhost`, `amqps://` for TLS.
   * `//` at the end is the vhost `/`. Query parameters: `heartbeat` and `connect_timeout`
   * (seconds), and for `amqps://` kombu's `ssl_cert_reqs`, `ssl_ca_certs`, `ssl_certfile`,
   * `ssl_keyfile`.
   * @default "amqp://guest:guest@localhost:5672//" (Celery's default broker)
   */
  url?: string;
  /**
   * Passed to amqplib's `connect()` as socket options, over what the URL says: TLS options (`ca`,
   * `cert`, `key`, `servername`...), `keepAlive`, `clientProperties`.
   * @default {}
   */
  socketOptions?: SocketOptions;
  /**
   * How long one connection attempt may take, and how long a graceful `close()` waits for
   * publishes in flight. The URL's `connect_timeout` wins.
   * @default 5_000
   */
  connectTimeoutMs?: number;
  /**
   * After a lost connection, the first reconnect attempt waits this long, then each wait doubles
   * (with ±20 % jitter) up to `reconnectMaxDelayMs`. Consumers resume on the new connection.
   * @default 100
   */
  reconnectInitialDelayMs?: number;
  /** The longest wait between reconnect attempts. @default 5_000 */
  reconnectMaxDelayMs?: number;
}

export interface ResolvedConnection {
  address: BrokerAddress;
  socketOptions: SocketOptions;
  connectTimeoutMs: number;
  reconnectInitialDelayMs: number;
  reconnectMaxDelayMs: number;
}

export function resolveConnection(options: ConnectionOptions): ResolvedConnection {
  return {
    address: parseAmqpUrl(options.url ?? DEFAULT_BROKER_URL),
    socketOptions: options.socketOptions ?? {},
    connectTimeoutMs: durationOption("connectTimeoutMs", options.connectTimeoutMs, 5_000),
    reconnectInitialDelayMs: durationOption(
      "reconnectInitialDelayMs",
      options.reconnectInitialDelayMs,
      100,
    ),
    reconnectMaxDelayMs: durationOption("reconnectMaxDelayMs", options.reconnectMaxDelayMs, 5_000),
  };
}
