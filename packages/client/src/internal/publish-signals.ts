import type { Logger, Signals, TaskMessage } from "@celery-ts/core";

/**
 * Sends `beforeTaskPublish` (listeners may change the message's headers) or `afterTaskPublish`.
 * A listener that throws is logged; the send goes on.
 */
export async function sendPublishSignal(
  signals: Signals,
  name: "beforeTaskPublish" | "afterTaskPublish",
  message: TaskMessage,
  queue: string,
  logger: Logger,
): Promise<void> {
  if (!signals.has(name)) return;
  const { task, id } = message.headers;
  const { args, kwargs } = message;
  const about = { task, id, args, kwargs, retries: message.headers.retries, queue };
  const errors =
    name === "beforeTaskPublish"
      ? await signals.send(name, { ...about, headers: message.headers as Record<string, unknown> })
      : await signals.send(name, about);
  for (const error of errors) {
    logger.error(`a "${name}" signal listener threw; the task is sent all the same`, {
      task,
      id,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
  }
}
