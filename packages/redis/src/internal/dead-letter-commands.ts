import { taskIdOf, type DeadLetter, type DeadLetterSelection } from "@celery-ts/core";
import { deadLetterCountLimit } from "@celery-ts/core/driver";
import type { Redis } from "ioredis";
import type { KeyLayout } from "./keys.ts";
import { runScript, TAKE_DEAD_LETTER } from "./scripts.ts";
import { isRedelivered, markRedelivered, parseEnvelope, priorityOf } from "./stored-message.ts";

/** A dead letter as this transport writes it (JSON), or as someone else left it. */
function readDeadLetter(queue: string, entry: string): DeadLetter {
  try {
    const parsed = JSON.parse(entry) as Record<string, unknown>;
    const raw = typeof parsed.raw === "string" ? parsed.raw : entry;
    const taskId =
      typeof parsed.task_id === "string" && parsed.task_id !== "" ? parsed.task_id : taskIdOf(raw);
    return {
      queue: typeof parsed.queue === "string" ? parsed.queue : queue,
      raw,
      reason: typeof parsed.reason === "string" ? parsed.reason : "rejected",
      rejectedAt: typeof parsed.rejected_at === "number" ? parsed.rejected_at : 0,
      ...(taskId !== undefined && { taskId }),
    };
  } catch {
    return { queue, raw: entry, reason: "unknown (not written by celery-ts)", rejectedAt: 0 };
  }
}

/** Dead letters of a queue (a list beside kombu's): listed, replayed and purged. */
export function createDeadLetterCommands(
  keys: KeyLayout,
  command: <T>(work: (client: Redis) => Promise<T>) => Promise<T>,
  ensureOpen: () => void,
) {
  const deadLetters = async (queue: string, { limit }: { limit?: number } = {}) => {
    ensureOpen();
    const count = deadLetterCountLimit(limit);
    if (count === 0) return [];
    const stop = count === undefined ? -1 : count - 1;
    const entries = await command((client) => client.lrange(keys.dead(queue), 0, stop));
    return entries.map((entry) => ({ entry, letter: readDeadLetter(queue, entry) }));
  };
  /** Takes the picked letters out, one script each (compare-and-delete), pushing replays back. */
  const takeLetters = async (
    queue: string,
    { taskId, limit = Infinity }: DeadLetterSelection,
    replay: boolean,
  ): Promise<number> => {
    ensureOpen();
    const picked = (await deadLetters(queue))
      .filter(({ letter }) => taskId === undefined || letter.taskId === taskId)
      .filter(({ letter }) => !replay || letter.raw !== "")
      .slice(0, limit);
    let done = 0;
    for (const { entry, letter } of picked) {
      const envelope = parseEnvelope(letter.raw);
      const list = keys.list(queue, priorityOf(envelope));
      // Replayed as new: a worker would skip a redelivered task whose FAILURE is stored.
      const fresh = isRedelivered(envelope)
        ? markRedelivered(letter.raw, envelope, false)
        : letter.raw;
      const taken = await command((client) =>
        runScript(
          client,
          TAKE_DEAD_LETTER,
          [keys.dead(queue), keys.deadBytes(queue), ...(replay ? [list] : [])],
          [entry, ...(replay ? [fresh] : [])],
        ),
      );
      done += Number(taken);
    }
    return done;
  };
  return {
    async deadLetters(queue: string, options?: { limit?: number }): Promise<DeadLetter[]> {
      return (await deadLetters(queue, options)).map(({ letter }) => letter);
    },
    replayDeadLetters: (queue: string, selection: DeadLetterSelection = {}) =>
      takeLetters(queue, selection, true),
    purgeDeadLetters: (queue: string, selection: DeadLetterSelection = {}) =>
      takeLetters(queue, selection, false),
  };
}
