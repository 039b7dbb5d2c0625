import { deadLetterMethods, type Transport } from "@celery-ts/core";

export interface QueueView {
  name: string;
  /** Waiting messages, or null where the transport cannot count them. */
  depth: number | null;
  /**
   * Messages the workers hold, running or prefetched (their `inspect active` and `reserved`, by
   * routing key); null until the workers first answered.
   */
  reserved: number | null;
  /** Dead letters (up to 1000 counted), or null where the transport keeps none. */
  deadLetters: number | null;
}

export const DEAD_LETTER_LIMIT = 1000;

/**
 * The queues the dashboard shows, with their depth and dead letters from the broker. Depths are
 * read on every poll; dead letters, read one by one (on RabbitMQ, held unacked while read), only
 * every `deadLetterEvery` ms, after an action on the queue, and when their list is opened.
 */
export class QueueWatch {
  readonly #transport: Transport;
  readonly #views = new Map<string, QueueView>();
  readonly #deadLetterEvery: number;
  #deadCountedAt = Number.NEGATIVE_INFINITY;

  constructor(transport: Transport, initial: string[], options: { deadLetterEvery: number }) {
    this.#transport = transport;
    this.#deadLetterEvery = options.deadLetterEvery;
    for (const name of initial) this.add(name);
  }

  add(name: string): void {
    // Celery's own broadcast queues (celery.pidbox, celeryev.*) are not work queues.
    if (name.includes("pidbox") || name.startsWith("celeryev")) return;
    if (!this.#views.has(name))
      this.#views.set(name, { name, depth: null, reserved: null, deadLetters: null });
  }

  list(): QueueView[] {
    return [...this.#views.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Sets each queue's reserved count from the workers' held messages, by queue. */
  setReserved(byQueue: ReadonlyMap<string, number>): void {
    for (const view of this.#views.values()) view.reserved = byQueue.get(view.name) ?? 0;
  }

  /** Sets a shown queue's dead-letter count from a listing of them (up to the limit). */
  setDeadLetters(name: string, count: number): void {
    const view = this.#views.get(name);
    if (view) view.deadLetters = Math.min(count, DEAD_LETTER_LIMIT);
  }

  /**
   * Reads the depth of every queue shown (and their dead letters when due), or the depth and dead
   * letters of `only`, when it is shown: a name from a request never joins the queues shown.
   */
  async refresh(only?: string): Promise<void> {
    const views = [...this.#views.values()].filter((v) => only === undefined || v.name === only);
    const transport = this.#transport;
    let dead = deadLetterMethods(transport);
    if (only === undefined) {
      if (Date.now() - this.#deadCountedAt < this.#deadLetterEvery) dead = undefined;
      else this.#deadCountedAt = Date.now();
    }
    await Promise.all(
      views.map(async (view) => {
        if (transport.depth) view.depth = await transport.depth(view.name);
        if (dead)
          view.deadLetters = (await dead.list(view.name, { limit: DEAD_LETTER_LIMIT })).length;
      }),
    );
  }
}
