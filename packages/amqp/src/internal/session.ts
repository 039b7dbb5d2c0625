import type { Socket } from "node:net";
import type { ConnectionEvent, Logger } from "@celery-ts/core";
import { connectionError } from "@celery-ts/core/driver";
import type {
  Channel,
  ChannelModel,
  ConfirmChannel,
  Message,
  Options,
  SocketOptions,
} from "amqplib";
import { mapAmqpError, PKG } from "./errors.ts";
import type { BrokerAddress } from "./parse-url.ts";

export interface ConnectionSettings {
  address: BrokerAddress;
  /** Passed to amqplib (net or tls options), over what the address says. */
  socketOptions: SocketOptions;
  connectTimeoutMs: number;
  /** Seconds: the kit's backoff between reconnect attempts. */
  reconnectInitialDelay: number;
  reconnectMaxDelay: number;
  /** Failed reconnect attempts in a row before the loop gives up (Infinity: never). */
  reconnectAttempts: number;
  logger: Logger;
  /** For messages: "transport", "rpc backend". */
  what: string;
  /** Told of each loss of the connection and each reconnect after one (role "connection"). */
  onEvent?: (event: ConnectionEvent) => void;
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

/** A pending mandatory publish, found again when RabbitMQ returns its message. */
interface PendingReturn {
  key: string;
  fail(): void;
}

function returnKey(exchange: string, routingKey: string, correlationId: unknown): string {
  return `${exchange}\u0000${routingKey}\u0000${String(correlationId ?? "")}`;
}

let nextSessionId = 1;

/** One open connection: its declarations channel and its confirm channel for publishing. */
export class SessionImpl implements Session {
  readonly id = nextSessionId++;
  readonly model: ChannelModel;
  #alive = true;
  readonly #settings: ConnectionSettings;
  readonly #declared = new Map<string, Promise<void>>();
  #declaring: Promise<unknown> = Promise.resolve();
  #declareChannel: Promise<Channel> | undefined;
  #confirmChannel: Promise<ConfirmChannel> | undefined;
  /** Why the server closed a publishing channel (ACCESS_REFUSED...): amqplib then fails its
   * unconfirmed publishes with a bare "channel closed". */
  readonly #closedBy = new WeakMap<ConfirmChannel, unknown>();
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
    if (!this.#alive) throw connectionError(PKG, "the connection to RabbitMQ was lost");
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
        if (!this.#alive) throw connectionError(PKG, "the connection to RabbitMQ was lost");
        let channel: ConfirmChannel;
        try {
          channel = await this.model.createConfirmChannel();
        } catch (error) {
          throw mapAmqpError(error, "open a confirm channel");
        }
        channel.on("error", (error: unknown) => {
          this.#closedBy.set(channel, error);
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
              PKG,
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
            PKG,
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
                connectionError(PKG, `cannot ${what}: RabbitMQ refused it (nack)`, {
                  cause: error,
                }),
              );
            } else finish(mapAmqpError(this.#closedBy.get(channel) ?? error, what));
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
    // In-flight publishes get up to the connect timeout to be confirmed; the timer is cleared as
    // soon as they are, so a process that closed its client exits at once.
    // The URL's connect_timeout wins, as for the connection itself.
    const { address, connectTimeoutMs } = this.#settings;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(this.#inFlight),
      new Promise(
        (resolve) => (timer = setTimeout(resolve, address.connectTimeoutMs ?? connectTimeoutMs)),
      ),
    ]).finally(() => clearTimeout(timer));
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
