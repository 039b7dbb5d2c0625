import type { CompareAndSetOptions } from "../coordination-store.ts";
import type { Transport } from "../transport.ts";
import { configError } from "./errors.ts";

/**
 * What a driver's stores need to know of its transports to publish as they do (for
 * `CoordinationStore.atomicPublisher()`), kept by each transport's `publish` function: the
 * transport object is built from its parts, and `publish` is the one part every copy of it (a
 * spread, a wrapper that keeps it, dead-letter methods added or not) carries unchanged.
 */
export interface PublishRegistry<T> {
  /** Called by the transport's factory with its own `publish`. */
  register(publish: object, value: T): void;
  /**
   * What `transport` registered; undefined for a transport of another package, another copy of
   * this one, or one whose `publish` was wrapped: the caller then falls back to two steps.
   */
  of(transport: Transport): T | undefined;
}

export function createPublishRegistry<T>(): PublishRegistry<T> {
  const byPublish = new WeakMap<object, T>();
  return {
    register: (publish, value) => void byPublish.set(publish, value),
    of: (transport) => byPublish.get(transport.publish),
  };
}

/** A compare-and-set's fence token must be a whole number: a `CONFIG` error otherwise. */
export function checkFenceToken(cas: CompareAndSetOptions, pkg: string): void {
  if (cas.fence && !Number.isSafeInteger(cas.fence.token)) {
    throw configError(pkg, `a fence token is a whole number, got ${cas.fence.token}`);
  }
}
