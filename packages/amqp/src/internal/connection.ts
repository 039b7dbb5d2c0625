import { readFile } from "node:fs/promises";
import type { Logger } from "@celery-ts/core";
import { backoffDelay, sleep, toMs } from "@celery-ts/core/driver";
import type { ChannelModel, Options, SocketOptions } from "amqplib";
import { connect as amqpConnect, lenientDecoding } from "./amqplib.ts";
import { closedError, configError, mapAmqpError } from "./errors.ts";
import type { BrokerAddress } from "./parse-url.ts";
import type { RetryPolicy } from "./reattach.ts";
import { SessionImpl, type ConnectionSettings, type Session } from "./session.ts";

export { allowsGlobalQos } from "./session.ts";
export type { ConnectionSettings, PublishRequest, Session } from "./session.ts";

export interface SessionListener {
  /** A session is open: the first, or a new one after a reconnect. */
  up(session: Session): void;
  /** The session is gone (connection lost or closed); its channels and deliveries with it. */
  down(session: Session, error: unknown): void;
  /** A connection attempt by the reconnect loop failed. */
  failed?(error: unknown): void;
  /** The reconnect loop stopped: `reconnectAttempts` attempts in a row failed. */
  gaveUp?(error: unknown): void;
}

/** One broker connection, opened on demand and kept up, with backoff, while anyone listens. */
export interface ConnectionManager {
  readonly closed: boolean;
  /** How the connection is re-established; what is set up on it again follows the same. */
  readonly retryPolicy: RetryPolicy;
  readonly session: Session | undefined;
  /** The open session, or one connection attempt; rejects with a mapped error. */
  open(): Promise<Session>;
  /** Keeps the connection up while subscribed; `up` is called for the current session too. */
  subscribe(listener: SessionListener): () => void;
  /** Idempotent. Graceful: waits (bounded) for publishes in flight. Forced: drops the socket. */
  close(options?: { force?: boolean }): Promise<void>;
}

let warnedDecoding = false;

async function socketOptionsFor(settings: ConnectionSettings): Promise<SocketOptions> {
  const { address } = settings;
  const options: SocketOptions = {
    noDelay: true,
    timeout: address.connectTimeoutMs ?? settings.connectTimeoutMs,
    clientProperties: {
      connection_name: `celery-ts ${settings.what} (pid ${process.pid})`,
    },
  };
  const tls = address.tls;
  if (tls) {
    const read = async (path: string | undefined, what: string) => {
      if (path === undefined) return undefined;
      try {
        return await readFile(path);
      } catch (cause) {
        throw configError(`cannot read the ${what} file ${path} (from the broker URL)`, cause);
      }
    };
    const [ca, cert, key] = await Promise.all([
      read(tls.caFile, "ssl_ca_certs"),
      read(tls.certFile, "ssl_certfile"),
      read(tls.keyFile, "ssl_keyfile"),
    ]);
    if (ca) options.ca = ca;
    if (cert) options.cert = cert;
    if (key) options.key = key;
    if (tls.rejectUnauthorized !== undefined) options.rejectUnauthorized = tls.rejectUnauthorized;
  }
  return { ...options, ...settings.socketOptions };
}

function connectOptions(address: BrokerAddress): Options.Connect {
  return {
    protocol: address.protocol,
    hostname: address.hostname,
    port: address.port,
    username: address.username,
    password: address.password,
    // amqplib percent-decodes the vhost once more: hand it an encoded one.
    vhost: encodeURIComponent(address.vhost),
    ...(address.heartbeat !== undefined && { heartbeat: address.heartbeat }),
  };
}

function describeAddress(address: BrokerAddress): string {
  return `${address.protocol}://${address.username}@${address.hostname}:${address.port}/${encodeURIComponent(address.vhost)}`;
}

/** Seconds since `since` (epoch ms), to a tenth. */
const seconds = (since: number): number => Math.round((Date.now() - since) / 100) / 10;

const errorText = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** Warns once per process when amqplib was loaded before our lenient decoding could patch it. */
function warnAboutDecoding(logger: Logger, where: string): void {
  if (lenientDecoding || warnedDecoding) return;
  warnedDecoding = true;
  logger.warn(
    "amqp: amqplib was loaded before @celery-ts/amqp, so it cannot read headers with integers " +
      "over 32 bits from Python producers (a message with one closes the connection); import " +
      "@celery-ts/amqp before amqplib",
    { where },
  );
}

/** The connection manager: one session at a time, and the reconnect loop. */
class Manager implements ConnectionManager {
  readonly #settings: ConnectionSettings;
  readonly #where: string;
  readonly #listeners = new Set<SessionListener>();
  #current: SessionImpl | undefined;
  #connecting: Promise<SessionImpl> | undefined;
  #maintaining = false;
  #closed = false;
  /** Since the loss of the connection, until the next one; `since` only while a loop reconnects. */
  #down: { since: number | undefined } | undefined;

  constructor(settings: ConnectionSettings) {
    this.#settings = settings;
    this.#where = describeAddress(settings.address);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get retryPolicy(): RetryPolicy {
    const { reconnectInitialDelay, reconnectMaxDelay, reconnectAttempts } = this.#settings;
    return { initial: reconnectInitialDelay, max: reconnectMaxDelay, attempts: reconnectAttempts };
  }

  get session(): Session | undefined {
    return this.#current?.alive ? this.#current : undefined;
  }

  readonly open = (): Promise<SessionImpl> => {
    if (this.#closed) return Promise.reject(closedError(this.#settings.what));
    if (this.#current?.alive) return Promise.resolve(this.#current);
    this.#connecting ??= this.#connectOnce().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  };

  subscribe(listener: SessionListener): () => void {
    this.#listeners.add(listener);
    const session = this.#current;
    if (session?.alive) {
      queueMicrotask(() => {
        if (this.#listeners.has(listener) && session.alive) listener.up(session);
      });
    } else {
      void this.#maintain();
    }
    return () => this.#listeners.delete(listener);
  }

  async close({ force = false }: { force?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    const session = this.#current ?? (await this.#connecting?.catch(() => undefined));
    this.#current = undefined;
    await session?.close(force);
  }

  async #connectOnce(): Promise<SessionImpl> {
    const settings = this.#settings;
    const where = this.#where;
    let model: ChannelModel;
    try {
      model = await amqpConnect(connectOptions(settings.address), await socketOptionsFor(settings));
    } catch (error) {
      throw mapAmqpError(error, `connect to RabbitMQ at ${where}`);
    }
    if (this.#closed) {
      await model.close().catch(() => undefined);
      throw closedError(settings.what);
    }
    const session = new SessionImpl(model, settings);
    this.#watch(model, session);
    this.#current = session;
    const down = this.#down;
    this.#down = undefined;
    if (down === undefined) {
      settings.logger.debug(`amqp: ${settings.what} connected`, { where, session: session.id });
    } else {
      // Without a reconnect loop, the time until the next use is not downtime: not given.
      const downFor = down.since === undefined ? {} : { downSeconds: seconds(down.since) };
      settings.logger.info(`amqp: ${settings.what} reconnected to RabbitMQ`, { where, ...downFor });
      settings.onEvent?.({ type: "recovered", role: "connection" });
    }
    warnAboutDecoding(settings.logger, where);
    // Whoever opened it (a publish, the reconnect loop), everyone listening gets it.
    for (const listener of this.#listeners) listener.up(session);
    return session;
  }

  #watch(model: ChannelModel, session: SessionImpl): void {
    const { logger } = this.#settings;
    const where = this.#where;
    let lastError: unknown;
    model.on("error", (error: unknown) => {
      lastError = error;
    });
    model.on("blocked", (reason: string) => {
      logger.warn(`amqp: RabbitMQ blocked the connection (${reason}); publishes wait`, { where });
    });
    model.on("unblocked", () => logger.info("amqp: RabbitMQ unblocked the connection", { where }));
    model.on("close", (error?: unknown) => this.#lost(session, error ?? lastError));
  }

  #lost(session: SessionImpl, error: unknown): void {
    session.markDead();
    if (this.#current !== session) return;
    this.#current = undefined;
    if (!this.#closed) {
      const { what, reconnectAttempts } = this.#settings;
      // Only a consumer (a listener) keeps a reconnect loop going; a publish-only transport
      // connects again when it is next used.
      const loop = this.#wanted();
      const limit =
        reconnectAttempts === Infinity ? "" : ` (at most ${reconnectAttempts} attempts)`;
      const next = loop ? `reconnecting with backoff${limit}` : "it will reconnect on next use";
      this.#settings.logger.warn(`amqp: ${what} lost its connection to RabbitMQ; ${next}`, {
        where: this.#where,
        error: errorText(error),
      });
      this.#down = { since: loop ? Date.now() : undefined };
      this.#settings.onEvent?.({ type: "lost", role: "connection" });
    }
    for (const listener of this.#listeners) listener.down(session, error);
    if (!this.#closed) void this.#maintain();
  }

  #wanted(): boolean {
    return !this.#closed && this.#listeners.size > 0;
  }

  /**
   * The reconnect loop: runs while anyone listens and there is no session, until
   * `reconnectAttempts` attempts in a row failed. Each failed attempt is logged at debug level:
   * the loss and the recovery are the lines that say what happened.
   */
  async #maintain(): Promise<void> {
    if (this.#maintaining) return;
    this.#maintaining = true;
    const {
      reconnectInitialDelay: initial,
      reconnectMaxDelay: max,
      reconnectAttempts,
      logger,
    } = this.#settings;
    try {
      for (let failures = 0; this.#wanted() && !this.#current?.alive;) {
        if (failures > 0) {
          // The kit's backoff: exponential with full jitter, capped.
          await sleep(toMs(backoffDelay(failures, { initial, max })));
          if (!this.#wanted()) break;
        }
        try {
          await this.open();
        } catch (error) {
          failures++;
          logger.debug("amqp: reconnect attempt failed; trying again", {
            where: this.#where,
            attempt: failures,
            error: errorText(error),
          });
          for (const listener of this.#listeners) listener.failed?.(error);
          if (failures >= reconnectAttempts) return this.#giveUp(failures, error);
        }
      }
    } finally {
      this.#maintaining = false;
    }
  }

  #giveUp(failures: number, error: unknown): void {
    this.#settings.logger.error(
      `amqp: ${this.#settings.what} gave up reconnecting after ${failures} failed attempts ` +
        "(reconnectAttempts); raise or remove the limit to keep trying",
      { where: this.#where, error: errorText(error) },
    );
    for (const listener of [...this.#listeners]) listener.gaveUp?.(error);
  }
}

/** One broker connection, opened on demand and kept up, with backoff, while anyone listens. */
export function createConnectionManager(settings: ConnectionSettings): ConnectionManager {
  return new Manager(settings);
}
