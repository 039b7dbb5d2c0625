import type { DeadLetter } from "@celery-ts/core";

/** A dead letter as the page lists it: no message body, only what names it. */
export interface DeadLetterRow {
  taskId: string | null;
  /** The task's name, from the message's headers (as the driver read them, or from the stored
   * envelope); null when it names none. */
  name: string | null;
  reason: string;
  /** Epoch milliseconds. */
  rejectedAt: number;
  /** False when the broker kept only the reason (a message over its byte bound): not replayable. */
  kept: boolean;
}

/** Messages read whole to find a task name: larger ones are listed without it. */
const NAME_READ_LIMIT = 256 * 1024;

/** The task name a stored kombu envelope carries in its headers (protocol 2). */
export function taskNameOf(raw: string): string | null {
  if (raw === "" || raw.length > NAME_READ_LIMIT) return null;
  try {
    const envelope = JSON.parse(raw) as { headers?: { task?: unknown } };
    return typeof envelope.headers?.task === "string" ? envelope.headers.task : null;
  } catch {
    return null;
  }
}

export function deadLetterRow(letter: DeadLetter): DeadLetterRow {
  return {
    taskId: letter.taskId ?? null,
    name: letter.taskName ?? taskNameOf(letter.raw),
    reason: letter.reason,
    rejectedAt: letter.rejectedAt,
    kept: letter.raw !== "",
  };
}
