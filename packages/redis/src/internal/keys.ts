import { configError } from "./errors.ts";

/** kombu's separator inside key names and binding entries (`Channel.sep`). */
export const SEP = "\x06\x16";

/** kombu's default `priority_steps`: one list per step. */
export const DEFAULT_PRIORITY_STEPS: readonly number[] = Object.freeze([0, 3, 6, 9]);

/** A priority as kombu reads it from a message: an integer clamped to 0-9, 0 when missing. */
export function clampPriority(priority: unknown): number {
  const n = typeof priority === "number" ? Math.trunc(priority) : Number.NaN;
  return Number.isFinite(n) ? Math.max(0, Math.min(9, n)) : 0;
}

export function checkPrioritySteps(steps: readonly number[]): readonly number[] {
  const valid =
    steps.length > 0 &&
    steps[0] === 0 &&
    steps.every(
      (step, i) => Number.isInteger(step) && step <= 9 && (i === 0 || step > steps[i - 1]!),
    );
  if (!valid) {
    throw configError(
      `prioritySteps must be increasing whole numbers from 0 to 9, starting at 0 (kombu's ` +
        `default is [0, 3, 6, 9]), got ${JSON.stringify(steps)}`,
    );
  }
  return steps;
}

/**
 * The key names kombu's Redis transport uses, under an optional prefix (kombu's
 * `global_keyprefix`, which it puts before every key).
 */
export class KeyLayout {
  readonly prefix: string;
  readonly steps: readonly number[];
  readonly unacked: string;
  readonly unackedIndex: string;
  readonly unackedMutex: string;

  constructor(prefix: string, steps: readonly number[]) {
    this.prefix = prefix;
    this.steps = steps;
    this.unacked = `${prefix}unacked`;
    this.unackedIndex = `${prefix}unacked_index`;
    this.unackedMutex = `${prefix}unacked_mutex`;
  }

  /** kombu's `priority()`: the step a priority falls in (steps[bisect_right(steps, p) - 1]). */
  step(priority: unknown): number {
    const p = clampPriority(priority);
    let step = this.steps[0] ?? 0;
    for (const candidate of this.steps) if (candidate <= p) step = candidate;
    return step;
  }

  /** kombu's `_q_for_pri`: the plain name for step 0, `<queue>\x06\x16<step>` for the others. */
  list(queue: string, priority: unknown = 0): string {
    const step = this.step(priority);
    return step === 0 ? `${this.prefix}${queue}` : `${this.prefix}${queue}${SEP}${step}`;
  }

  /** Every list of a queue, in the order consumers read them (0 first). */
  lists(queue: string): string[] {
    return this.steps.map((step) => this.list(queue, step));
  }

  /** `_kombu.binding.<exchange>`: the set of `<routing key>SEP<pattern>SEP<queue>` entries. */
  binding(exchange: string): string {
    return `${this.prefix}_kombu.binding.${exchange}`;
  }

  /**
   * How Celery declares a queue: bound to a direct exchange of the same name with its name as
   * routing key (`Queues.new_missing`; the default queue "celery" and Celery's default exchange
   * "celery" agree). Returns the set and its entry `<queue>SEP<pattern "">SEP<queue>`.
   */
  declaration(queue: string): [key: string, member: string] {
    return [this.binding(queue), [queue, "", queue].join(SEP)];
  }

  /** Ours, not kombu's: the ids of the celery-ts consumers that may hold messages (a set). */
  get consumers(): string {
    return `${this.prefix}_celery-ts.consumers`;
  }

  /** Ours: present while the consumer `id` lives (a key with a TTL, renewed by heartbeats). */
  alive(id: string): string {
    return `${this.prefix}_celery-ts.alive.${id}`;
  }

  /** Ours: the delivery tags the consumer `id` took and has not settled (a set). */
  held(id: string): string {
    return `${this.prefix}_celery-ts.held.${id}`;
  }

  /** Ours, not kombu's: the messages of a queue rejected without requeue, oldest first. */
  dead(queue: string): string {
    return `${this.prefix}_celery-ts.dead.${queue}`;
  }

  /** Ours: the bytes of a queue's dead letters, kept beside them to bound them. */
  deadBytes(queue: string): string {
    return `${this.prefix}_celery-ts.dead-bytes.${queue}`;
  }
}
