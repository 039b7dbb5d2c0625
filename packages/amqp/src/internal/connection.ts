import { readFile } from "node:fs/promises";
import type { Socket } from "node:net";
import type { Logger } from "@celery-ts/core";
import type {
  Channel,
  ChannelModel,
  ConfirmChannel,
  Message,
  Options,
  SocketOptions,
} from "amqplib";
import { connect as amqpConnect, lenientDecoding } from "./amqplib.ts";
import { closedError, configError, connectionError, mapAmqpError } from "./errors.ts";
import type { BrokerAddress } from "./parse-url.ts";

export interface ConnectionSettings {
  address: BrokerAddress;
  /** Passed to amqplib (net or tls options), over what the address says. */
  socketOptions: SocketOptions;
  connectTimeoutMs: number;
  reconnectInitialDelayMs: number;
  reconnectMaxDelayMs: number;
  logger: Logger;
  /** For messages: "transport", "rpc backend". */
  what: string;
}

export interface PublishRequest {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: Options.Publish;
  /** Completes "could not ...", for errors. */
  what: string;
  timeoutMs: number;
  /** Ask RabbitMQ to return the message if no queue takes it; the publish then rejects. */
  mandatory?: boolean;
}

/** One open connection. A new one replaces it after a reconnect. */
export interface Session {
  readonly id: number;
  readonly model: ChannelModel;
  readonly alive: boolean;
  /** The local port of the socket: `rabbitmqctl close_connection` names connections by it. */
  readonly localPort: number | undefined;
  /** What the server said it is, at connection: `{ product: "RabbitMQ", version: "3.10.8" }`. */
  readonly server: { product: string; version: string };
  /**
   * Runs `work` once per session for `key`, on a channel kept for declarations; concurrent calls
   * share the run, and a failure is not cached. Declarations run one at a time, so that one
   * refused by the server (which closes the channel) cannot fail the others.
   */
  declare(key: string, what: string, work: (channel: Channel) => Promise<void>): Promise<void>;
  /** Runs `work` on the declarations channel, in turn with declarations, without caching. */
  run<T>(what: string, work: (channel: Channel) => Promise<T>): Promise<T>;
  /** Forgets cached declarations whose key includes `fragment` (their entity may be gone). */
  forget(fragment: string): void;
  /** Publishes on the confirm channel; resolves once RabbitMQ confirms it has the message. */
  publish(request: PublishRequest): Promise<void>;
  /** A new channel whose errors are logged rather than thrown. */
  channel(): Promise<Channel>;
}

export interface SessionListener {
  /** A session is open: the first, or a new one after a reconnect. */
  up(session: Session): void;
  /** The session is gone (connection lost or closed); its channels and deliveries with it. */
  down(session: Session, error: unknown): void;
  /** A connection attempt by the reconnect loop failed. */
  failed?(error: unknown): void;
}

/** One broker connection, opened on demand and kept up, with backoff, while anyone listens. */
export interface ConnectionManager {
  readonly closed: boolean;
  readonly session: Session | undefined;
  /** The open session, or one connection attempt; rejects with a mapped error. */
  open(): Promise<Session>;
  /** Keeps the connection up while subscribed; `up` is called for the current session too. */
  subscribe(listener: SessionListener): () => void;
  /** Idempotent. Graceful: waits (bounded) for publishes in flight. Forced: drops the socket. */
  close(options?: { force?: boolean }): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let nextSessionId = 1;
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

export function createConnectionManager(settings: ConnectionSettings): ConnectionManager {
  const { logger } = settings;
  const where = describeAddress(settings.address);
  const listeners = new Set<SessionListener>();
  let current: SessionImpl | undefined;
  let connecting: Promise<SessionImpl> | undefined;
  let maintaining = false;
  let closed = false;

  const connectOnce = async (): Promise<SessionImpl> => {
    let model: ChannelModel;
    try {
      model = await amqpConnect(connectOptions(settings.address), await socketOptionsFor(settings));
    } catch (error) {
      throw mapAmqpError(error, `connect to RabbitMQ at ${where}`);
    }
    if (closed) {
      await model.close().catch(() => undefined);
      throw closedError(settings.what);
    }
    const session = new SessionImpl(model, settings);
    let lastError: unknown;
    model.on("error", (error: unknown) => {
      lastError = error;
    });
    model.on("blocked", (reason: string) => {
      logger.warn(`amqp: RabbitMQ blocked the connection (${reason}); publishes wait`, {
        where,
      });
    });
    model.on("unblocked", () => logger.info("amqp: RabbitMQ unblocked the connection", { where }));
    model.on("close", (error?: unknown) => lost(session, error ?? lastError));
    current = session;
    logger.debug("amqp: connected", { where, session: session.id });
    if (!lenientDecoding && !warnedDecoding) {
      warnedDecoding = true;
      logger.warn(
        "amqp: amqplib was loaded before @celery-ts/amqp, so it cannot read headers with integers " +
          "over 32 bits from Python producers (a message with one closes the connection); import " +
          "@celery-ts/amqp before amqplib",
        { where },
      );
    }
    // Whoever opened it (a publish, the reconnect loop), everyone listening gets it.
    for (const listener of listeners) listener.up(session);
    return session;
  };

  const open = (): Promise<SessionImpl> => {
    if (closed) return Promise.reject(closedError(settings.what));
    if (current?.alive) return Promise.resolve(current);
    connecting ??= connectOnce().finally(() => {
      connecting = undefined;
    });
    return connecting;
  };

  const lost = (session: SessionImpl, error: unknown): void => {
    session.markDead();
    if (current !== session) return;
    current = undefined;
    if (!closed) {
      logger.warn("amqp: connection lost", {
        where,
        error: error instanceof Error ? error.message : String(error),
      });
    }
    for (const listener of listeners) listener.down(session, error);
    if (!closed) void maintain();
  };

  /** The reconnect loop: runs while anyone listens and there is no session. */
  const maintain = async (): Promise<void> => {
    if (maintaining) return;
    maintaining = true;
    let delay = settings.reconnectInitialDelayMs;
    let first = true;
    try {
      while (!closed && listeners.size > 0 && !current?.alive) {
        if (!first) {
          // Exponential backoff with jitter (±20 %), capped.
          await sleep(delay * (0.8 + 0.4 * Math.random()));
          delay = Math.min(delay * 2, settings.reconnectMaxDelayMs);
          if (closed || listeners.size === 0) break;
        }
        first = false;
        try {
          await open();
        } catch (error) {
          logger.warn("amqp: reconnecting failed; trying again", {
            where,
            error: error instanceof Error ? error.message : String(error),
          });
          for (const listener of listeners) listener.failed?.(error);
        }
      }
    } finally {
      maintaining = false;
    }
  };

  return {
    get closed() {
      return closed;
    },
    get session() {
      return current?.alive ? current : undefined;
    },
    open,
    subscribe(listener) {
      listeners.add(listener);
      if (current?.alive) {
        const session = current;
        queueMicrotask(() => {
          if (listeners.has(listener) && session.alive) listener.up(session);
        });
      } else {
        void maintain();
      }
      return () => listeners.delete(listener);
    },
    async close({ force = false } = {}) {
      if (closed) return;
      closed = true;
      listeners.clear();
      const session = current ?? (await connecting?.catch(() => undefined));
      current = undefined;
      await session?.close(force);
    },
  };
}

/** A pending mandatory publish, found again when RabbitMQ returns its message. */
interface PendingReturn {
  key: string;
  fail(): void;
}

function returnKey(exchange: string, routingKey: string, correlationId: unknown): string {
  return `${exchange}\u0000${routingKey}\u0000${String(correlationId ?? "")}`;
}

class SessionImpl implements Session {
  readonly id = nextSessionId++;
  readonly model: ChannelModel;
  #alive = true;
  readonly #settings: ConnectionSettings;
  readonly #declared = new Map<string, Promise<void>>();
  #declaring: Promise<unknown> = Promise.resolve();
  #declareChannel: Promise<Channel> | undefined;
  #confirmChannel: Promise<ConfirmChannel> | undefined;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #returns: PendingReturn[] = [];

  constructor(model: ChannelModel, settings: ConnectionSettings) {
    this.model = model;
    this.#settings = settings;
  }

  get alive(): boolean {
    return this.#alive;
  }

  get server(): { product: string; version: string } {
    const properties = this.model.connection.serverProperties as Partial<Record<string, unknown>>;
    return {
      product: typeof properties.product === "string" ? properties.product : "",
      version: typeof properties.version === "string" ? properties.version : "",
    };
  }

  get localPort(): number | undefined {
    return (this.model.connection as unknown as { stream?: Socket }).stream?.localPort;
  }

  markDead(): void {
    this.#alive = false;
  }

  async channel(): Promise<Channel> {
    if (!this.#alive) throw connectionError("the connection to RabbitMQ was lost");
    let channel: Channel;
    try {
      channel = await this.model.createChannel();
    } catch (error) {
      throw mapAmqpError(error, "open a channel");
    }
    channel.on("error", (error: unknown) => {
      this.#settings.logger.debug("amqp: channel closed by the server", {
        error: error instanceof Error ? error.message : String(error),
      });
    });
    return channel;
  }

  #ownChannel<C extends Channel>(
    create: () => Promise<C>,
    reset: (channel: Promise<C>) => void,
  ): Promise<C> {
    const created = create().then((channel) => {
      channel.on("close", () => reset(created));
      return channel;
    });
    created.catch(() => reset(created));
    return created;
  }

  #declarationChannel(): Promise<Channel> {
    this.#declareChannel ??= this.#ownChannel(
      () => this.channel(),
      (channel) => {
        if (this.#declareChannel === channel) this.#declareChannel = undefined;
      },
    );
    return this.#declareChannel;
  }

  #publishChannel(): Promise<ConfirmChannel> {
    this.#confirmChannel ??= this.#ownChannel(
      async () => {
        if (!this.#alive) throw connectionError("the connection to RabbitMQ was lost");
        let channel: ConfirmChannel;
        try {
          channel = await this.model.createConfirmChannel();
        } catch (error) {
          throw mapAmqpError(error, "open a confirm channel");
        }
        channel.on("error", (error: unknown) => {
          this.#settings.logger.warn("amqp: publishing channel closed by the server", {
            error: error instanceof Error ? error.message : String(error),
          });
        });
        channel.on("return", (message: Message) => this.#returned(message));
        return channel;
      },
      (channel) => {
        if (this.#confirmChannel === channel) this.#confirmChannel = undefined;
      },
    );
    return this.#confirmChannel;
  }

  #returned(message: Message): void {
    const key = returnKey(
      message.fields.exchange,
      message.fields.routingKey,
      message.properties.correlationId,
    );
    const index = this.#returns.findIndex((pending) => pending.key === key);
    if (index >= 0) this.#returns.splice(index, 1)[0]?.fail();
  }

  run<T>(what: string, work: (channel: Channel) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const channel = await this.#declarationChannel();
      try {
        return await work(channel);
      } catch (error) {
        throw mapAmqpError(error, what);
      }
    };
    const result = this.#declaring.then(run, run);
    this.#declaring = result.catch(() => undefined);
    return result;
  }

  declare(key: string, what: string, work: (channel: Channel) => Promise<void>): Promise<void> {
    const cached = this.#declared.get(key);
    if (cached) return cached;
    const declared = this.run(what, work);
    this.#declared.set(key, declared);
    declared.catch(() => {
      if (this.#declared.get(key) === declared) this.#declared.delete(key);
    });
    return declared;
  }

  forget(fragment: string): void {
    for (const key of this.#declared.keys()) if (key.includes(fragment)) this.#declared.delete(key);
  }

  publish(request: PublishRequest): Promise<void> {
    const published = this.#publish(request);
    this.#inFlight.add(published);
    void published.catch(() => undefined).finally(() => this.#inFlight.delete(published));
    return published;
  }

  async #publish(request: PublishRequest): Promise<void> {
    const channel = await this.#publishChannel();
    const { exchange, routingKey, content, options, what, timeoutMs } = request;
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const pending: PendingReturn = {
        key: returnKey(exchange, routingKey, options.correlationId),
        fail: () =>
          finish(
            connectionError(
              `cannot ${what}: RabbitMQ returned it, as no queue is bound for it (was the ` +
                "queue deleted?); it will be declared again on the next try",
            ),
          ),
      };
      const finish = (error?: unknown): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const index = this.#returns.indexOf(pending);
        if (index >= 0) this.#returns.splice(index, 1);
        if (error === undefined) resolve();
        else reject(error);
      };
      const timer = setTimeout(() => {
        finish(
          connectionError(
            `cannot ${what}: RabbitMQ did not confirm it within ${timeoutMs} ms (the message ` +
              "may or may not have been taken)",
          ),
        );
      }, timeoutMs);
      if (request.mandatory) this.#returns.push(pending);
      try {
        channel.publish(
          exchange,
          routingKey,
          content,
          { ...options, mandatory: request.mandatory ?? false },
          (error: unknown) => {
            if (error === null || error === undefined) finish();
            else if (error instanceof Error && /nack/i.test(error.message)) {
              finish(
                connectionError(`cannot ${what}: RabbitMQ refused it (nack)`, { cause: error }),
              );
            } else finish(mapAmqpError(error, what));
          },
        );
      } catch (error) {
        finish(mapAmqpError(error, what));
      }
    });
  }

  async close(force: boolean): Promise<void> {
    if (!this.#alive) return;
    if (force) {
      this.#alive = false;
      (this.model.connection as unknown as { stream?: Socket }).stream?.destroy();
      return;
    }
    await Promise.race([
      Promise.allSettled(this.#inFlight),
      sleep(this.#settings.connectTimeoutMs),
    ]);
    this.#alive = false;
    await this.model.close().catch(() => undefined);
  }
}

/**
 * Whether a server takes basic.qos with global=true. RabbitMQ deprecated it in 2021 and 4.3
 * refuses it by default (the `global_qos` deprecated feature); other servers: assume not.
 */
export function allowsGlobalQos(server: { product: string; version: string }): boolean {
  if (server.product !== "RabbitMQ") return false;
  const [major = 0, minor = 0] = server.version.split(".").map((part) => Number.parseInt(part, 10));
  return major < 4 || (major === 4 && minor < 3);
}
