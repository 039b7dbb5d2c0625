import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { CeleryTsError } from "./errors.ts";
import { createMemoryBackend } from "./memory-backend.ts";
import { MemoryBroker, createMemoryTransport } from "./memory-transport.ts";
import type { ResultBackend } from "./result-backend.ts";
import type { Transport } from "./transport.ts";

/** What a driver package exports so that URLs with its scheme resolve to it. */
export interface DriverModule {
  createTransportFromUrl?(url: string): Transport;
  createBackendFromUrl?(url: string): ResultBackend;
}

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
};

// memory:// URLs with the same name share one in-process broker or backend.
const memoryBrokers = new Map<string, MemoryBroker>();
const memoryBackends = new Map<string, ResultBackend>();

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

async function loadDriver(scheme: string): Promise<DriverModule> {
  const pkg = DRIVER_PACKAGES[scheme];
  if (!pkg) {
    const known = ["memory", ...Object.keys(DRIVER_PACKAGES)].join(", ");
    throw new CeleryTsError("CONFIG", `unknown URL scheme "${scheme}://" (known: ${known})`);
  }
  const specifier = resolveDriver(pkg);
  if (!specifier) {
    throw new CeleryTsError(
      "CONFIG",
      `the URL scheme "${scheme}://" needs the package ${pkg}: install it (pnpm add ${pkg})`,
    );
  }
  try {
    return (await import(specifier)) as DriverModule;
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

/** A transport object as given, or one built from a URL by its driver package. */
export async function resolveTransport(spec: Transport | string): Promise<Transport> {
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
    throw new CeleryTsError("CONFIG", `${DRIVER_PACKAGES[scheme]} has no broker for ${scheme}://`);
  }
  return driver.createTransportFromUrl(spec);
}

/** A result backend object as given, or one built from a URL by its driver package. */
export async function resolveBackend(spec: ResultBackend | string): Promise<ResultBackend> {
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
      `${DRIVER_PACKAGES[scheme]} has no result backend for ${scheme}://; ` +
        "use a redis:// or sqlite:// result backend",
    );
  }
  return driver.createBackendFromUrl(spec);
}
