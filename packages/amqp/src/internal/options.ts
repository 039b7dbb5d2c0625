import type { SocketOptions } from "amqplib";
import { durationOption, toMs } from "@celery-ts/core/driver";
import { configError, PKG } from "./errors.ts";
import { DEFAULT_BROKER_URL, parseAmqpUrl, type BrokerAddress } from "./parse-url.ts";

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
   * Seconds one connection attempt may take, and a graceful `close()` waits for publishes in
   * flight. The URL's `connect_timeout` wins.
   * @default 5
   */
  connectTimeout?: number;
  /**
   * Seconds: after a lost connection, reconnect attempts wait up to this long, then up to twice
   * as long each time (the driver kit's backoff, with full jitter), up to `reconnectMaxDelay`.
   * Consumers resume on the new connection.
   * @default 0.1
   */
  reconnectInitialDelay?: number;
  /** The longest wait between reconnect attempts, in seconds. @default 5 */
  reconnectMaxDelay?: number;
  /**
   * How many reconnect attempts in a row may fail before giving up: consumers then end with the
   * last `CONNECTION` error (a worker stops). Publishes always try once more when called.
   * @default Infinity: keep trying, with backoff, however long RabbitMQ is away; or the URL's
   * `?reconnect_attempts=`
   */
  reconnectAttempts?: number;
}

/** The connection settings, checked: the connect timeout in ms for timers, the backoff in seconds. */
export interface ResolvedConnection {
  address: BrokerAddress;
  socketOptions: SocketOptions;
  connectTimeoutMs: number;
  reconnectInitialDelay: number;
  reconnectMaxDelay: number;
  reconnectAttempts: number;
}

function attemptsOption(value: number | undefined): number {
  if (value === undefined || value === Infinity) return Infinity;
  if (!Number.isInteger(value) || value < 1) {
    throw configError(
      `reconnectAttempts must be a whole number of 1 or more, or Infinity, got ${String(value)}`,
    );
  }
  return value;
}

export function resolveConnection(options: ConnectionOptions): ResolvedConnection {
  const address = parseAmqpUrl(options.url ?? DEFAULT_BROKER_URL);
  return {
    address,
    socketOptions: options.socketOptions ?? {},
    connectTimeoutMs: toMs(durationOption(PKG, "connectTimeout", options.connectTimeout, 5)),
    reconnectInitialDelay: durationOption(
      PKG,
      "reconnectInitialDelay",
      options.reconnectInitialDelay,
      0.1,
    ),
    reconnectMaxDelay: durationOption(PKG, "reconnectMaxDelay", options.reconnectMaxDelay, 5),
    reconnectAttempts: attemptsOption(options.reconnectAttempts ?? address.reconnectAttempts),
  };
}
