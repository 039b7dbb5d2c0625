import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { CoordinationStore } from "./coordination-store.ts";
import { CeleryTsError } from "./errors.ts";
import { createMemoryBackend } from "./memory-backend.ts";
import { MemoryStoreSpace, createMemoryStore } from "./memory-store.ts";
import { createMemoryBroadcast } from "./memory-broadcast.ts";
import { MemoryBroker, createMemoryTransport } from "./memory-transport.ts";
import {
  registeredDriver,
  registeredSchemes,
  type DriverModule,
  type DriverUrlOptions,
} from "./driver/registry.ts";
import type { Broadcast } from "./broadcast.ts";
import type { ResultBackend } from "./result-backend.ts";
import type { Transport } from "./transport.ts";

export type { DriverModule } from "./driver/registry.ts";

/**
 * The built-in drivers' packages, imported on first use of their scheme. Any other driver
 * registers its schemes with `registerDriver()` when imported (the app imports it), and the
 * built-in ones do too, so a scheme they add needs no entry here.
 */
const DRIVER_PACKAGES: Record<string, string> = {
  sqlite: "@celery-ts/sqlite",
  redis: "@celery-ts/redis",
  rediss: "@celery-ts/redis",
  "redis+sentinel": "@celery-ts/redis",
  sentinel: "@celery-ts/redis",
  amqp: "@celery-ts/amqp",
  amqps: "@celery-ts/amqp",
  rpc: "@celery-ts/amqp",
  sqs: "@celery-ts/sqs",
  postgres: "@celery-ts/postgres",
  postgresql: "@celery-ts/postgres",
};

/** Brokers that keep no coordination store: beat and the fleet-wide features need another. */
const NO_STORE = new Set(["amqp", "amqps", "rpc", "sqs"]);

// memory:// URLs with the same name share one in-process broker or backend.
const memoryBrokers = new Map<string, MemoryBroker>();
const memoryBackends = new Map<string, ResultBackend>();
const memoryStores = new Map<string, MemoryStoreSpace>();

function schemeOf(url: string): string {
  const match = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (!match?.[1]) {
    throw new CeleryTsError(
      "CONFIG",
      `${JSON.stringify(url)} is not a broker or backend URL; use e.g. sqlite:///path/to/queue.db, ` +
        "redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//",
    );
  }
  return match[1].toLowerCase();
}

interface LoadedDriver extends DriverModule {
  pkg: string;
}

async function loadDriver(scheme: string): Promise<LoadedDriver> {
  const registered = registeredDriver(scheme);
  if (registered) return registered;
  const pkg = DRIVER_PACKAGES[scheme];
  if (!pkg) {
    const known = [
      ...new Set(["memory", ...Object.keys(DRIVER_PACKAGES), ...registeredSchemes()]),
    ].join(", ");
    throw new CeleryTsError(
      "CONFIG",
      `unknown URL scheme "${scheme}://" (known: ${known}); a third-party driver registers its ` +
        "scheme when imported: import its package before resolving the URL",
    );
  }
  const specifier = resolveDriver(pkg);
  if (!specifier) {
    throw new CeleryTsError(
      "CONFIG",
      `the URL scheme "${scheme}://" needs the package ${pkg}: install it (pnpm add ${pkg})`,
    );
  }
  try {
    const module = (await import(specifier)) as DriverModule;
    // A driver that registered on import may serve more than its exports name.
    return registeredDriver(scheme) ?? { ...module, pkg };
  } catch (cause) {
    throw new CeleryTsError("CONFIG", `${pkg} is installed but failed to load: ${String(cause)}`, {
      cause,
    });
  }
}

/**
 * Finds a driver from the application, not from core: a driver is the app's dependency, and a
 * strict node_modules layout hides it from core. The app is where its entry script lives, or
 * the working directory; core's own location comes last.
 */
function resolveDriver(pkg: string): string | undefined {
  const entry = process.argv[1];
  const from = [...(entry ? [dirname(entry)] : []), process.cwd()];
  for (const dir of from) {
    try {
      return pathToFileURL(createRequire(join(dir, "index.js")).resolve(pkg)).href;
    } catch {
      // not installed where this app lives; try the next place
    }
  }
  try {
    return import.meta.resolve(pkg);
  } catch {
    return undefined;
  }
}

/**
 * A transport object as given, or one built from a URL by its driver package, reporting to
 * `options.logger` (an object keeps the logger it was built with).
 */
export async function resolveTransport(
  spec: Transport | string,
  options: DriverUrlOptions = {},
): Promise<Transport> {
  if (typeof spec !== "string") return spec;
  const scheme = schemeOf(spec);
  if (scheme === "memory") {
    const name = spec.slice("memory://".length);
    const broker = memoryBrokers.get(name) ?? new MemoryBroker();
    memoryBrokers.set(name, broker);
    return createMemoryTransport({ broker });
  }
  const driver = await loadDriver(scheme);
  if (!driver.createTransportFromUrl) {
    throw new CeleryTsError("CONFIG", `${driver.pkg} has no broker for ${scheme}://`);
  }
  return driver.createTransportFromUrl(spec, options);
}

/** A result backend object as given, or one built from a URL by its driver package. */
export async function resolveBackend(
  spec: ResultBackend | string,
  options: DriverUrlOptions = {},
): Promise<ResultBackend> {
  if (typeof spec !== "string") return spec;
  const scheme = schemeOf(spec);
  if (scheme === "memory") {
    const name = spec.slice("memory://".length);
    const backend = memoryBackends.get(name) ?? createMemoryBackend();
    memoryBackends.set(name, backend);
    return backend;
  }
  const driver = await loadDriver(scheme);
  if (!driver.createBackendFromUrl) {
    throw new CeleryTsError(
      "CONFIG",
      `${driver.pkg} has no result backend for ${scheme}://; ` +
        "use a redis:// or sqlite:// result backend",
    );
  }
  return driver.createBackendFromUrl(spec, options);
}

/**
 * A coordination store object as given, or one built from a URL by its driver package
 * (`redis://...`, `sqlite:///...`, `postgres://...`; `memory://name` shares one in-process store per name). Beat and
 * the fleet-wide features default to the broker's URL, so a broker without a store (RabbitMQ, SQS)
 * gets a CONFIG error naming the option to set.
 */
export async function resolveStore(
  spec: CoordinationStore | string,
  options: DriverUrlOptions = {},
): Promise<CoordinationStore> {
  if (typeof spec !== "string") return spec;
  const scheme = schemeOf(spec);
  if (scheme === "memory") {
    const name = spec.slice("memory://".length);
    const space = memoryStores.get(name) ?? new MemoryStoreSpace();
    memoryStores.set(name, space);
    return createMemoryStore({ space });
  }
  const driver = NO_STORE.has(scheme) ? undefined : await loadDriver(scheme);
  if (!driver?.createStoreFromUrl) {
    throw new CeleryTsError(
      "CONFIG",
      `${DRIVER_PACKAGES[scheme] ?? scheme} has no coordination store for ${scheme}://: name a store on ` +
        "Redis, SQLite or PostgreSQL with the store option (--store redis://127.0.0.1:6379/0, " +
        "--store sqlite:///coordination.db or --store postgres://user@host/db)",
    );
  }
  return driver.createStoreFromUrl(spec, options);
}

/**
 * Remote control and event messaging on a broker: from the transport object's `broadcast()`, or
 * from the URL's driver package. Throws a `CONFIG` error naming the broker when it has none.
 */
export async function resolveBroadcast(
  spec: Transport | string,
  options: DriverUrlOptions = {},
): Promise<Broadcast> {
  if (typeof spec !== "string") {
    if (spec.broadcast) return spec.broadcast();
    throw new CeleryTsError(
      "CONFIG",
      `the ${spec.name} transport has no remote control or events; give the broker as a URL, ` +
        "or use Redis, RabbitMQ or SQLite",
    );
  }
  const scheme = schemeOf(spec);
  if (scheme === "memory") {
    const name = spec.slice("memory://".length);
    const broker = memoryBrokers.get(name) ?? new MemoryBroker();
    memoryBrokers.set(name, broker);
    return createMemoryBroadcast(broker.exchanges);
  }
  const driver = await loadDriver(scheme);
  if (!driver.createBroadcastFromUrl) {
    throw new CeleryTsError(
      "CONFIG",
      `${DRIVER_PACKAGES[scheme]} has no remote control or events for ${scheme}:// ` +
        "(Celery has none there either); use Redis, RabbitMQ or SQLite for them",
    );
  }
  return driver.createBroadcastFromUrl(spec, options);
}
