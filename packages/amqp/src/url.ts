import type { Broadcast, ResultBackend, Transport } from "@celery-ts/core";
import { takeDeliveryLimitParameters, type DriverUrlOptions } from "@celery-ts/core/driver";
import { createAmqpBroadcast } from "./fanout.ts";
import { createAmqpTransport } from "./amqp-transport.ts";
import { configError, PKG } from "./internal/errors.ts";
import { DEFAULT_BROKER_URL, parseAmqpUrl, redact } from "./internal/parse-url.ts";
import { createRpcBackend } from "./rpc-backend.ts";

function schemeOf(url: string): string {
  return /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase() ?? "";
}

/**
 * The broker for `amqp://user:password@host:5672/vhost` or `amqps://...` (`pyamqp://` too), read
 * as kombu reads it (see the README's URL table). No I/O: it connects on first use.
 */
export function createTransportFromUrl(url: string, given: DriverUrlOptions = {}): Transport {
  const scheme = schemeOf(url);
  if (scheme === "rpc") {
    throw configError(
      `${redact(url)} is a result backend URL; the broker is amqp://user:password@host:5672/vhost`,
    );
  }
  const { url: rest, options } = takeDeliveryLimitParameters(PKG, url);
  parseAmqpUrl(rest);
  return createAmqpTransport({ url: rest, ...options, ...given });
}

/**
 * Celery's `rpc://` result backend. Celery's `rpc://` means "over the broker's connection"; a URL
 * alone cannot name that connection, so `rpc://` is Celery's default broker
 * (`amqp://guest:guest@localhost:5672//`), and `rpc://user:password@host:port/vhost` (or the same
 * with `amqp://` or `amqps://`) names another. To share a transport's connection, use
 * `createRpcBackend({ broker: transport })`.
 */
export function createBackendFromUrl(url: string, options: DriverUrlOptions = {}): ResultBackend {
  const scheme = schemeOf(url);
  const rest = url.slice(scheme.length + 3);
  const brokerUrl =
    scheme === "rpc" ? (rest === "" || rest === "/" ? DEFAULT_BROKER_URL : `amqp://${rest}`) : url;
  if (!["rpc", "amqp", "amqps", "pyamqp"].includes(scheme)) {
    throw configError(`${JSON.stringify(redact(url))} is not an rpc:// result backend URL`);
  }
  parseAmqpUrl(brokerUrl);
  return createRpcBackend({ url: brokerUrl, ...options });
}

/** Remote control and events (kombu's pidbox, Celery's `celeryev`) on the RabbitMQ at `url`. */
export function createBroadcastFromUrl(url: string, given: DriverUrlOptions = {}): Broadcast {
  const scheme = schemeOf(url);
  if (!["amqp", "amqps", "pyamqp"].includes(scheme)) {
    throw configError(`${JSON.stringify(redact(url))} is not an amqp:// broker URL`);
  }
  // The broker URL a worker was given may carry the transport's dead-letter and message-size
  // parameters (the CLI's --dead-letter* and --max-message-bytes add them); they are not the
  // broadcast's, so they are set aside here rather than rejected.
  const { url: rest } = takeDeliveryLimitParameters(PKG, url);
  parseAmqpUrl(rest);
  return createAmqpBroadcast({ url: rest, ...given });
}
