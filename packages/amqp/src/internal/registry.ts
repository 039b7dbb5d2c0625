import type { ConnectionManager } from "./connection.ts";

/** What a transport of this package lends to an rpc backend built on it (and to tests). */
export interface TransportInternals {
  manager: ConnectionManager;
  publishTimeoutMs: number;
}

const internals = new WeakMap<object, TransportInternals>();

export function registerInternals(transport: object, value: TransportInternals): void {
  internals.set(transport, value);
}

/** The connection of a transport made by `createAmqpTransport`, or undefined for any other. */
export function internalsOf(transport: object): TransportInternals | undefined {
  return internals.get(transport);
}
