import { randomUUID } from "node:crypto";
import {
  encodeEnvelope,
  silentLogger,
  type Broadcast,
  type BroadcastDelivery,
  type BroadcastQueue,
  type BroadcastSubscription,
  type ExchangeRef,
  type Logger,
  type WireMessage,
} from "@celery-ts/core";
import { Redis, type RedisOptions } from "ioredis";
import { bindingMatches, closedError, deliverBroadcast, sleep } from "@celery-ts/core/driver";
import { mapRedisError, PKG } from "./internal/errors.ts";
import { KeyLayout, SEP } from "./internal/keys.ts";
import { isRedisClient, type RedisConnection } from "./internal/link.ts";
import { parseRedisUrl } from "./internal/parse-url.ts";
import { publishFrame, PublishFrame } from "./internal/publish-frame.ts";

export interface RedisBroadcastOptions {
  /**
   * The Redis server, as for the transport: a URL, ioredis options or an ioredis client (which
   * stays yours; this opens duplicates of it).
   * @default "redis://127.0.0.1:6379/0"
   */
  connection?: RedisConnection;
  /** kombu's `global_keyprefix`, before every key and channel. @default "", or the URL's */
  keyPrefix?: string;
  /** @default silentLogger */
  logger?: Logger;
}

/** How long a reply queue's blocking pop waits before it looks whether it was closed. */
const POP_TIMEOUT_S = 1;
/** How long a reply queue's reader waits after a failed pop before it tries again. */
const POP_RETRY_MS = 200;

type Handler = (delivery: BroadcastDelivery) => void;

/** The ioredis options of the broadcast's connections, kombu's key prefix a URL gives, and the target for errors. */
function connectionSettings(opts: RedisBroadcastOptions): {
  redisOptions: RedisOptions;
  urlPrefix: string | undefined;
  target: string;
} {
  if (isRedisClient(opts.connection)) {
    return { redisOptions: { ...opts.connection.options }, urlPrefix: undefined, target: "redis" };
  }
  if (opts.connection === undefined || typeof opts.connection === "string") {
    const parsed = parseRedisUrl(opts.connection ?? "redis://127.0.0.1:6379/0");
    return { redisOptions: parsed.redis, urlPrefix: parsed.keyPrefix, target: parsed.target };
  }
  return { redisOptions: { ...opts.connection }, urlPrefix: undefined, target: "redis" };
}

/**
 * The broadcast's Redis connections, opened on first use: one for commands, one subscriber for
 * the fanout channels, and one per reply queue being popped.
 */
class Links {
  readonly #options: RedisOptions;
  readonly #logger: Logger;
  readonly #clients = new Set<Redis>();
  #main: Redis | undefined;
  #subscriber: Redis | undefined;

  constructor(options: RedisOptions, logger: Logger) {
    this.#options = options;
    this.#logger = logger;
  }

  /** A new connection (not yet open) for `role`, shown as its client name. */
  add(role: string): Redis {
    const { replyMapping: _ignored, ...rest } = this.#options;
    const client = new Redis<"legacy">({
      ...rest,
      // RESP2 and legacy reply shapes, as the transport's connections.
      protocol: 2,
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      // Events of many tasks finishing at once share one write.
      enableAutoPipelining: true,
      connectionName: `celery-ts:${role}`,
    });
    client.on("error", (error: unknown) =>
      this.#logger.debug("redis: broadcast connection error", { role, error: String(error) }),
    );
    this.#clients.add(client);
    return client;
  }

  async connected(client: Redis): Promise<Redis> {
    if (client.status === "wait") await client.connect();
    return client;
  }

  /** The connection for commands. */
  main(): Promise<Redis> {
    return this.connected((this.#main ??= this.add("broadcast")));
  }

  /** The pattern subscriber; the first call makes it, with `onMessage` for its messages. */
  subscriber(onMessage: (pattern: string, channel: string, raw: string) => void): Promise<Redis> {
    if (!this.#subscriber) {
      this.#subscriber = this.add("broadcast-subscriber");
      this.#subscriber.on("pmessage", onMessage);
    }
    return this.connected(this.#subscriber);
  }

  /** Disconnects one connection for good. */
  drop(client: Redis): void {
    client.disconnect();
    this.#clients.delete(client);
  }

  /** Disconnects every connection. */
  dropAll(): void {
    for (const client of this.#clients) client.disconnect();
    this.#clients.clear();
  }
}

/** What the publishing and subscribing functions share. */
interface Fanout {
  links: Links;
  keys: KeyLayout;
  db: number;
  logger: Logger;
  /** The handlers of each subscribed pattern: one PSUBSCRIBE per pattern, however many listen. */
  patterns: Map<string, Set<Handler>>;
}

/** kombu's `_get_publish_topic`: the channel of a fanout exchange. */
function channel({ keys, db }: Fanout, exchange: string, routingKey: string): string {
  return `${keys.prefix}/${db}.${exchange}${routingKey ? `/${routingKey}` : ""}`;
}

/** kombu on Redis: fanout exchanges, and `celeryev`, which Celery declares fanout on Redis. */
function viaPubSub(exchange: ExchangeRef): boolean {
  return exchange.type === "fanout" || exchange.name === "celeryev";
}

/** Publishes on the exchange's channel, or pushes to the list of every queue bound to it. */
async function publishTo(
  f: Fanout,
  exchange: ExchangeRef,
  routingKey: string,
  message: WireMessage,
): Promise<void> {
  const client = await f.links.main();
  const route = { exchange: exchange.name, routingKey, priority: 0, deliveryTag: randomUUID() };
  if (viaPubSub(exchange)) {
    // Straight to the socket: ioredis's auto-pipeline would hold it until setImmediate, a turn
    // of the event loop more for each batch of task events. (A channel is no key: no keyPrefix.)
    const name = channel(f, exchange.name, routingKey);
    const { frame, release } = publishFrame(name, message, route);
    await client.sendCommand(new PublishFrame(name, frame));
    release();
    return;
  }
  const raw = encodeEnvelope(message, route);
  const members = await client.smembers(f.keys.binding(exchange.name));
  const queues = new Set<string>();
  for (const member of members) {
    const [key = "", , queue = ""] = member.split(SEP);
    if (queue && bindingMatches(exchange, key, routingKey)) queues.add(queue);
  }
  for (const queue of queues) await client.lpush(f.keys.list(queue), raw);
}

/** Hands a message of a subscribed pattern to its handlers, with the routing key of its channel. */
function onPatternMessage(f: Fanout, pattern: string, ch: string, raw: string): void {
  const rest = ch.slice(`${f.keys.prefix}/${f.db}.`.length);
  const slash = rest.indexOf("/");
  const routingKey = slash === -1 ? "" : rest.slice(slash + 1);
  for (const handler of f.patterns.get(pattern) ?? []) {
    deliverBroadcast(PKG, f.logger, raw, routingKey, handler);
  }
}

/** Subscribes to a fanout exchange's channel pattern (a binding key's `#` becomes `*`). */
async function subscribePubSub(
  f: Fanout,
  exchange: ExchangeRef,
  queue: BroadcastQueue,
  bindingKey: string,
  onMessage: Handler,
): Promise<BroadcastSubscription> {
  const pattern = channel(f, exchange.name, bindingKey.replaceAll("#", "*"));
  const member = [bindingKey, "", queue.name].join(SEP);
  const client = await f.links.main();
  const subscriber = await f.links.subscriber((p, ch, raw) => onPatternMessage(f, p, ch, raw));
  let handlers = f.patterns.get(pattern);
  if (!handlers) {
    handlers = new Set();
    f.patterns.set(pattern, handlers);
    await subscriber.psubscribe(pattern);
  }
  handlers.add(onMessage);
  // kombu records the binding too; nothing routes by it, but it shows who listens.
  await client.sadd(f.keys.binding(exchange.name), member);
  let done = false;
  return {
    close: async () => {
      if (done) return;
      done = true;
      handlers.delete(onMessage);
      if (handlers.size === 0) {
        f.patterns.delete(pattern);
        await subscriber.punsubscribe(pattern).catch(() => undefined);
      }
      await client.srem(f.keys.binding(exchange.name), member).catch(() => undefined);
    },
  };
}

/** Binds a queue (a list) to a direct or topic exchange and pops its messages on a connection of its own. */
async function subscribeList(
  f: Fanout,
  exchange: ExchangeRef,
  queue: BroadcastQueue,
  bindingKey: string,
  onMessage: Handler,
): Promise<BroadcastSubscription> {
  const client = await f.links.main();
  const member = [bindingKey, "", queue.name].join(SEP);
  await client.sadd(f.keys.binding(exchange.name), member);
  const popper = await f.links.connected(f.links.add("broadcast-queue"));
  let done = false;
  const loop = (async () => {
    while (!done) {
      try {
        const popped = await popper.brpop(f.keys.list(queue.name), POP_TIMEOUT_S);
        if (popped) deliverBroadcast(PKG, f.logger, popped[1], bindingKey, onMessage);
      } catch (error) {
        if (done) return;
        f.logger.warn("redis: reading a reply queue failed; retrying", { error: String(error) });
        await sleep(POP_RETRY_MS);
      }
    }
  })();
  return {
    close: async () => {
      if (done) return;
      done = true;
      f.links.drop(popper);
      await loop;
      await client.srem(f.keys.binding(exchange.name), member).catch(() => undefined);
      await client.del(f.keys.list(queue.name)).catch(() => undefined);
    },
  };
}

/**
 * Remote control and events on Redis, in kombu's layout so Python's `celery inspect`, `celery
 * control` and `celery events` meet ours:
 * - fanout exchanges (`celery.pidbox`, and `celeryev`, which Celery makes fanout on Redis) are
 *   pub/sub channels `/<db>.<exchange>` (plus `/<routing key>` when there is one), subscribed
 *   by pattern (a binding key's `#` becomes `*`);
 * - direct and other topic exchanges (the reply exchange `reply.celery.pidbox`) route through
 *   the `_kombu.binding.<exchange>` set to lists, as task queues do.
 */
export function createRedisBroadcast(options: RedisBroadcastOptions | string = {}): Broadcast {
  const opts: RedisBroadcastOptions =
    typeof options === "string" ? { connection: options } : options;
  const logger = opts.logger ?? silentLogger;
  const { redisOptions, urlPrefix, target } = connectionSettings(opts);
  const f: Fanout = {
    links: new Links(redisOptions, logger),
    keys: new KeyLayout(opts.keyPrefix ?? urlPrefix ?? "", [0]),
    db: redisOptions.db ?? 0,
    logger,
    patterns: new Map(),
  };
  const subscriptions = new Set<BroadcastSubscription>();
  let closed = false;
  const run = async <T>(work: () => Promise<T>): Promise<T> => {
    if (closed) throw closedError(PKG, "broadcast");
    try {
      return await work();
    } catch (error) {
      throw mapRedisError(error, target);
    }
  };
  return {
    name: "redis",
    connect: () => run(async () => void (await f.links.main())),
    async close() {
      if (closed) return;
      await Promise.all([...subscriptions].map((s) => s.close()));
      closed = true;
      f.links.dropAll();
    },
    publish: (exchange, routingKey, message) =>
      run(() => publishTo(f, exchange, routingKey, message)),
    subscribe: (exchange, queue, bindingKey, onMessage) =>
      run(async () => {
        const subscription = viaPubSub(exchange)
          ? await subscribePubSub(f, exchange, queue, bindingKey, onMessage)
          : await subscribeList(f, exchange, queue, bindingKey, onMessage);
        const tracked: BroadcastSubscription = {
          close: async () => {
            subscriptions.delete(tracked);
            await subscription.close();
          },
        };
        subscriptions.add(tracked);
        return tracked;
      }),
  };
}
