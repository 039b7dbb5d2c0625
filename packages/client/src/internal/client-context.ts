import { randomUUID } from "node:crypto";
import {
  resolveBackend,
  resolveStore,
  resolveTransport,
  signals as processSignals,
  silentLogger,
  type CoordinationStore,
  type Logger,
  type ResultBackend,
  type RetryPolicy,
  type Signals,
  type Transport,
} from "@celery-ts/core";
import type { ResultSource } from "../canvas/group-result.ts";
import { DEFAULT_PUBLISH_RETRY, type ClientOptions } from "../client-options.ts";
import { createControl, type ClientControl } from "../control.ts";
import { clientError, closedError } from "./errors.ts";
import { lazyConnection, type LazyConnection } from "./lazy-connection.ts";

/** What the client's send paths share: its connections, settings and open/closed state. */
export interface ClientContext {
  readonly logger: Logger;
  readonly signals: Signals;
  readonly broker: LazyConnection<Transport>;
  readonly backend: LazyConnection<ResultBackend> | undefined;
  /** Where unique tasks are claimed; undefined when neither given nor derivable from the broker. */
  readonly store: LazyConnection<CoordinationStore> | undefined;
  readonly control: ClientControl;
  /** What every result of this client reads from, and revokes through. */
  readonly results: ResultSource;
  readonly sendTaskEvents: boolean;
  /** Throws a `CLOSED` error once close() has been called. */
  ensureOpen(): void;
  /** Runs a send, which close() waits for; rejects with `CLOSED` after close(). */
  track<T>(work: () => Promise<T>): Promise<T>;
  /** Where workers send results: an rpc:// backend's reply queue, else the client's oid. */
  replyAddress(): Promise<string>;
  /** The retry policy of one send: the call's, over the client's, over the defaults. */
  publishPolicy(call: RetryPolicy | false | undefined): Required<RetryPolicy> | false;
  /** Waits for tracked sends, then closes what the client opened. Idempotent. */
  close(): Promise<void>;
}

/** An environment variable holding a URL, or undefined when unset or blank. */
function envUrl(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value ? value : undefined;
}

function brokerOption(broker: Transport | string | undefined): Transport | string {
  const resolved = broker ?? envUrl("CELERY_BROKER_URL");
  if (resolved === undefined) {
    throw clientError(
      "CONFIG",
      "no broker: pass createClient({ broker }) a URL or a transport, or set CELERY_BROKER_URL " +
        '(e.g. CELERY_BROKER_URL="redis://127.0.0.1:6379/0")',
    );
  }
  return resolved;
}

/** The broker, backend and store connections, each opened on first use. */
function connections(options: ClientOptions) {
  const brokerSpec = brokerOption(options.broker);
  const backendOption = options.backend ?? envUrl("CELERY_RESULT_BACKEND");
  const storeSpec = options.store ?? (typeof brokerSpec === "string" ? brokerSpec : undefined);
  return {
    brokerSpec,
    broker: lazyConnection(brokerSpec, resolveTransport),
    backend:
      backendOption === undefined ? undefined : lazyConnection(backendOption, resolveBackend),
    store: storeSpec === undefined ? undefined : lazyConnection(storeSpec, resolveStore),
  };
}

function noBackendError(): Error {
  return clientError(
    "NO_RESULT_BACKEND",
    "no result backend is configured, so task states and results cannot be read; " +
      'configure one, e.g. createClient({ broker, backend: "sqlite:///results.db" })',
  );
}

export function createClientContext(options: ClientOptions): ClientContext {
  const { brokerSpec, broker, backend, store } = connections(options);
  const clientPolicy =
    options.publishRetry === false ? false : { ...DEFAULT_PUBLISH_RETRY, ...options.publishRetry };
  // Celery's app oid: one reply address per client. An rpc:// backend names its own reply queue.
  const oid = randomUUID();
  const control = createControl(brokerSpec);
  const inFlight = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;
  const ensureOpen = (): void => {
    if (closing) throw closedError();
  };
  const results: ResultSource = {
    backend: async () => {
      ensureOpen();
      if (!backend) throw noBackendError();
      return backend.get();
    },
    control: () => {
      ensureOpen();
      return control;
    },
  };
  return {
    logger: options.logger ?? silentLogger,
    signals: options.signals ?? processSignals,
    broker,
    backend,
    store,
    control,
    results,
    sendTaskEvents: options.sendTaskEvents ?? false,
    ensureOpen,
    async track<T>(work: () => Promise<T>): Promise<T> {
      ensureOpen();
      const sending = work();
      inFlight.add(sending);
      try {
        return await sending;
      } finally {
        inFlight.delete(sending);
      }
    },
    async replyAddress() {
      const stored = backend && (await backend.get());
      return stored?.replyTo ? stored.replyTo() : oid;
    },
    publishPolicy(call) {
      if (call === undefined) return clientPolicy;
      return call === false ? false : { ...(clientPolicy || DEFAULT_PUBLISH_RETRY), ...call };
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled(inFlight);
        await Promise.all([broker.close(), backend?.close(), store?.close(), control.close()]);
      })();
      return closing;
    },
  };
}
