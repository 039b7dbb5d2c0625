import type { CoordinationStore } from "../coordination-store.ts";
import { CeleryTsError } from "../errors.ts";
import type { Broadcast } from "../broadcast.ts";
import type { ResultBackend } from "../result-backend.ts";
import type { Logger } from "../logger.ts";
import type { Transport } from "../transport.ts";

/** What the caller of a URL factory passes on to what it builds. */
export interface DriverUrlOptions {
  /** Where the connection's losses and recoveries are reported (the worker's log). */
  logger?: Logger;
}

/** What a driver package exports so that URLs with its scheme resolve to it. */
export interface DriverModule {
  createTransportFromUrl?(url: string, options?: DriverUrlOptions): Transport;
  /** Remote control and events (kombu's fanout and reply exchanges) on the broker at `url`. */
  createBroadcastFromUrl?(url: string, options?: DriverUrlOptions): Broadcast;
  createBackendFromUrl?(url: string, options?: DriverUrlOptions): ResultBackend;
  /** The coordination store (leases, tick records, counters) kept on the same server or file. */
  createStoreFromUrl?(url: string, options?: DriverUrlOptions): CoordinationStore;
}

/** A driver's URL schemes and factories, as given to `registerDriver()`. */
export interface DriverRegistration extends DriverModule {
  /** The package that registers, for messages: `"@celery-ts/redis"`. */
  readonly pkg: string;
  /** The URL schemes it serves, without `://`: `["redis", "rediss"]`. Case does not matter. */
  readonly schemes: readonly string[];
}

// On globalThis, so that two copies of core (a duplicate install) see the same registrations.
const REGISTRY = Symbol.for("celery-ts.driver-registry");
type Registry = Map<string, DriverRegistration>;

function registry(): Registry {
  const holder = globalThis as { [REGISTRY]?: Registry };
  holder[REGISTRY] ??= new Map();
  return holder[REGISTRY];
}

/**
 * Makes URLs with the driver's schemes resolve to it: a driver package calls this when it is
 * imported, so that `resolveTransport("toy://...")` works without any change to core. A scheme
 * already registered by another package is a `CONFIG` error; the same package registering again
 * (a second copy of it) replaces its entry.
 */
export function registerDriver(registration: DriverRegistration): void {
  const drivers = registry();
  for (const raw of registration.schemes) {
    const scheme = raw.toLowerCase();
    if (!/^[a-z][a-z0-9+.-]*$/.test(scheme) || scheme === "memory") {
      throw new CeleryTsError(
        "CONFIG",
        `${registration.pkg} cannot register the URL scheme "${raw}": use letters, digits, ` +
          '"+", "." or "-", starting with a letter ("memory" is built in)',
      );
    }
    const other = drivers.get(scheme);
    if (other && other.pkg !== registration.pkg) {
      throw new CeleryTsError(
        "CONFIG",
        `${registration.pkg} cannot register the URL scheme "${scheme}://": ${other.pkg} ` +
          "already did; import only one of them, or pass the transport object instead of a URL",
      );
    }
    drivers.set(scheme, registration);
  }
}

/** The registration of a URL scheme (lowercase), if a driver registered it. */
export function registeredDriver(scheme: string): DriverRegistration | undefined {
  return registry().get(scheme.toLowerCase());
}

/** Every registered scheme, for error messages. */
export function registeredSchemes(): string[] {
  return [...registry().keys()];
}
