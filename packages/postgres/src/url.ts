import type { CoordinationStore, ResultBackend, Transport } from "@celery-ts/core";
import type { DriverUrlOptions } from "@celery-ts/core/driver";
import { configError, takeDeliveryLimitParameters } from "@celery-ts/core/driver";
import { PKG } from "./internal/database.ts";
import { createPostgresBackend } from "./postgres-backend.ts";
import { createPostgresStore } from "./postgres-store.ts";
import { createPostgresTransport } from "./postgres-transport.ts";

const FORMS =
  "postgres://[user[:password]@]host[:port]/database[?schema=NAME&visibility_timeout=SECONDS&polling_interval=SECONDS] (or postgresql://)";

/** Our query parameters taken out; the rest of the URL goes to pg as it is. */
function parse(full: string) {
  // Dead-letter and size parameters are the transport's; the backend accepts them too.
  const { url, options: limits } = takeDeliveryLimitParameters(PKG, full);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw configError(PKG, `"${url}" is not a URL; use ${FORMS}`, error);
  }
  if (!/^postgres(ql)?:$/.test(parsed.protocol) || parsed.hostname === "") {
    throw configError(PKG, `"${url}" is not a PostgreSQL URL; use ${FORMS}`);
  }
  const take = (name: string): string | undefined => {
    const value = parsed.searchParams.get(name) ?? undefined;
    parsed.searchParams.delete(name);
    return value;
  };
  const seconds = (name: string): number | undefined => {
    const value = take(name);
    if (value === undefined) return undefined;
    const number = Number(value);
    if (value === "" || !Number.isFinite(number) || number <= 0) {
      throw configError(PKG, `${name} must be a positive number of seconds, got "${value}"`);
    }
    return number;
  };
  const schema = take("schema");
  const visibilityTimeout = seconds("visibility_timeout");
  const pollInterval = seconds("polling_interval");
  return {
    url: parsed.toString(),
    limits,
    ...(schema !== undefined && { schema }),
    ...(visibilityTimeout !== undefined && { visibilityTimeout }),
    ...(pollInterval !== undefined && { pollInterval }),
  };
}

/** `postgres://…` and `postgresql://…` as a broker. No I/O: it connects on first use. */
export function createTransportFromUrl(url: string, options: DriverUrlOptions = {}): Transport {
  const { limits, ...parsed } = parse(url);
  return createPostgresTransport({ ...parsed, ...limits, ...options });
}

/** `postgres://…` and `postgresql://…` as a result backend. */
export function createBackendFromUrl(url: string, options: DriverUrlOptions = {}): ResultBackend {
  const { url: stripped, schema } = parse(url);
  return createPostgresBackend({
    url: stripped,
    ...(schema !== undefined && { schema }),
    ...(options.logger && { logger: options.logger }),
  });
}

/**
 * `postgres://…` and `postgresql://…` as a coordination store (beat, fleet-wide rate limits,
 * unique tasks): the broker's URL names its store. The broker's own parameters are accepted.
 */
export function createStoreFromUrl(url: string, options: DriverUrlOptions = {}): CoordinationStore {
  const { url: stripped, schema } = parse(url);
  return createPostgresStore({
    url: stripped,
    ...(schema !== undefined && { schema }),
    ...(options.logger && { logger: options.logger }),
  });
}
