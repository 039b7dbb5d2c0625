import {
  settleBatch,
  type Logger,
  type PublishItem,
  type PublishOptions,
  type WireMessage,
} from "@celery-ts/core";
import type { Redis } from "ioredis";
import { PKG } from "./errors.ts";
import type { KeyLayout } from "./keys.ts";
import { queuedMessage } from "./queued-message.ts";
import { sendNow } from "./send-now.ts";

/** The most values one LPUSH carries (a list with more gets several LPUSHes in the MULTI). */
const MAX_VALUES = 1_000;

/** One `publish()` call or one batch, waiting for the next write; settled together. */
interface Waiting {
  queues: string[];
  lists: string[];
  raws: string[];
  /** The batch, to name what was not sent; undefined for a lone publish. */
  batch: readonly PublishItem[] | undefined;
  resolve(): void;
  reject(error: unknown): void;
}

/** Where one message of a write went: its list and its place among that list's values. */
interface Placed {
  queue: string;
  list: string;
  index: number;
}

/** What Redis refused in a MULTI: kombu bindings by queue, LPUSH chunks by list. */
interface Refusals {
  bindings: Map<string, unknown>;
  chunks: Map<string, (unknown | undefined)[]>;
}

export interface PublisherOptions {
  keys: KeyLayout;
  /** A command on the main connection, bounded and mapped. */
  command<T>(work: (client: Redis) => Promise<T>): Promise<T>;
  /** Maps a Redis error to the transport's (for commands of a MULTI that Redis refused). */
  mapError(error: unknown): unknown;
  /** Told of a kombu binding Redis refused (the messages themselves were queued). */
  logger: Logger;
}

/**
 * The transport's publishes, in kombu's layout: `_kombu.binding.<queue>` declared once per queue
 * and connection (as kombu declares a queue once), then LPUSH. Publishes made in the same tick
 * (concurrent `delay()` calls, or a batch) go out together in one round trip: one LPUSH per list
 * with all its messages in order (Redis pushes them one after the other, as separate LPUSHes
 * would), in a MULTI when there is more than one command so that a batch lands whole. A lone
 * publish to a declared queue is a single LPUSH written at once, without waiting for ioredis's
 * auto-pipeline (a turn of the event loop). An LPUSH Redis refuses fails only the sends whose
 * messages it carried; a refused binding (its key not a set) fails none, since the messages
 * were queued all the same: it is logged, and declared again by the queue's next publish.
 */
export function createPublisher({ keys, command, mapError, logger }: PublisherOptions) {
  /** Queues whose kombu binding this connection has declared. */
  const declared = new Set<string>();
  let waiting: Waiting[] = [];

  const flush = (): void => {
    const group = waiting;
    waiting = [];
    const declaring = new Set<string>();
    const lists = new Map<string, string[]>();
    const placed = group.map((item) =>
      item.raws.map((raw, i): Placed => {
        const queue = item.queues[i]!;
        if (!declared.has(queue)) declaring.add(queue);
        const list = item.lists[i]!;
        let values = lists.get(list);
        if (!values) lists.set(list, (values = []));
        values.push(raw);
        return { queue, list, index: values.length - 1 };
      }),
    );
    command((client) => write(client, keys, declaring, lists)).then(
      (refusals) => {
        for (const queue of declaring) {
          const refused = refusals?.bindings.get(queue);
          if (refused === undefined) declared.add(queue);
          else warnBinding(logger, keys.binding(queue), queue, refused);
        }
        group.forEach((item, i) => settle(item, placed[i]!, refusals, mapError));
      },
      (error: unknown) => {
        for (const item of group) item.reject(error);
      },
    );
  };

  const enqueue = (item: Omit<Waiting, "resolve" | "reject">): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      // After the microtasks under way: every send started in this turn joins the write.
      if (waiting.length === 0) process.nextTick(flush);
      waiting.push({ ...item, resolve, reject });
    });

  return {
    publish(message: WireMessage, options: PublishOptions): Promise<void> {
      const { list, raw } = queuedMessage(keys, message, options);
      return enqueue({ queues: [options.queue], lists: [list], raws: [raw], batch: undefined });
    },
    publishBatch(batch: readonly PublishItem[]): Promise<void> {
      const queues: string[] = [];
      const lists: string[] = [];
      const raws: string[] = [];
      for (const { message, options } of batch) {
        const { list, raw } = queuedMessage(keys, message, options);
        queues.push(options.queue);
        lists.push(list);
        raws.push(raw);
      }
      return enqueue({ queues, lists, raws, batch });
    },
  };
}

/** Resolves a send whose messages all landed; otherwise rejects, naming a batch's unsent ones. */
function settle(
  item: Waiting,
  placed: readonly Placed[],
  refusals: Refusals | undefined,
  mapError: (error: unknown) => unknown,
): void {
  if (!refusals) return item.resolve();
  // Only a message's own LPUSH decides: a refused binding did not stop it from being queued.
  const errors = placed.map(
    ({ list, index }) => refusals.chunks.get(list)?.[Math.floor(index / MAX_VALUES)],
  );
  if (errors.every((error) => error === undefined)) return item.resolve();
  if (!item.batch) return item.reject(mapError(errors[0]));
  try {
    settleBatch(
      item.batch,
      errors.map((error) =>
        error === undefined
          ? { status: "fulfilled", value: undefined }
          : { status: "rejected", reason: mapError(error) },
      ),
      PKG,
    );
  } catch (error) {
    return item.reject(error);
  }
  item.resolve();
}

/** A kombu binding Redis refused: the messages were queued, a Python worker may not route to it. */
function warnBinding(logger: Logger, key: string, queue: string, error: unknown): void {
  const reason = error instanceof Error ? error.message : String(error);
  logger.warn(
    `redis: could not declare queue "${queue}" (SADD ${key}: ${reason}); its messages were ` +
      `queued all the same, but kombu (Python Celery) finds the queues it routes to there: ` +
      `delete or fix ${key} (it must be a set); the next publish to "${queue}" declares it again`,
    { queue, key },
  );
}

/**
 * One round trip: a lone LPUSH, or a MULTI of the new bindings' SADDs and the lists' LPUSHes.
 * Resolves with what Redis refused in the MULTI (undefined when nothing was); a lost or failed
 * round trip rejects.
 */
async function write(
  client: Redis,
  keys: KeyLayout,
  declaring: ReadonlySet<string>,
  lists: ReadonlyMap<string, string[]>,
): Promise<Refusals | undefined> {
  const [only] = lists;
  if (declaring.size === 0 && lists.size === 1 && only && only[1].length <= MAX_VALUES) {
    await sendNow(client, "lpush", [only[0], ...only[1]]);
    return undefined;
  }
  const transaction = client.multi();
  for (const queue of declaring) transaction.sadd(...keys.declaration(queue));
  for (const [list, values] of lists) {
    for (let i = 0; i < values.length; i += MAX_VALUES) {
      transaction.lpush(list, ...values.slice(i, i + MAX_VALUES));
    }
  }
  const results = await transaction.exec();
  if (!results) throw new Error("Connection is closed (transaction aborted)");
  return refusalsOf(results, declaring, lists);
}

function refusalsOf(
  results: [error: Error | null, result: unknown][],
  declaring: ReadonlySet<string>,
  lists: ReadonlyMap<string, string[]>,
): Refusals | undefined {
  const refusals: Refusals = { bindings: new Map(), chunks: new Map() };
  let next = 0;
  let refused = false;
  for (const queue of declaring) {
    const error = results[next++]?.[0];
    if (error) refusals.bindings.set(queue, error);
    refused ||= Boolean(error);
  }
  for (const [list, values] of lists) {
    const chunks: (unknown | undefined)[] = [];
    for (let i = 0; i < values.length; i += MAX_VALUES) {
      const error = results[next++]?.[0] ?? undefined;
      chunks.push(error);
      refused ||= error !== undefined;
    }
    refusals.chunks.set(list, chunks);
  }
  return refused ? refusals : undefined;
}
