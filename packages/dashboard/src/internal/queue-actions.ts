import {
  deadLetterMethods,
  type DeadLetterSelection,
  type Logger,
  type Transport,
} from "@celery-ts/core";
import {
  ActionError,
  needQueue,
  optionalString,
  plural,
  type Action,
  type ActionResult,
} from "./action-kit.ts";
import type { QueueWatch } from "./queue-watch.ts";

/** The actions on queues: purge the waiting messages, replay or purge the dead letters. */
export function queueActions(deps: {
  transport: Transport;
  queues: QueueWatch;
  logger: Logger;
}): Record<string, Action> {
  const { transport, queues, logger } = deps;
  /** Reads the queue's counts again after an action; the action is done even when this fails. */
  const recount = async (queue: string): Promise<void> => {
    try {
      await queues.refresh(queue);
    } catch (error) {
      logger.warn("dashboard: reading the queue again after an action failed", {
        queue,
        error: String(error),
      });
    }
  };
  /** Replays or purges the dead letters of the body's queue (those of `taskId` when given). */
  const onDeadLetters = async (
    body: Record<string, unknown>,
    verb: "replay" | "purge",
  ): Promise<ActionResult> => {
    const queue = needQueue(body);
    const taskId = optionalString(body, "taskId");
    const api = deadLetterMethods(transport);
    if (!api)
      throw new ActionError(
        `the ${transport.name} broker keeps no dead letters here (a driver without them, or ?dead_letters=off)`,
      );
    const selection: DeadLetterSelection = taskId === undefined ? {} : { taskId };
    const n = await api[verb](queue, selection);
    await recount(queue);
    const which = taskId === undefined ? "" : ` of task ${taskId}`;
    const letters = `${plural(n, "dead letter")}${which}`;
    const message =
      verb === "replay" ? `put ${letters} back on ${queue}` : `deleted ${letters} from ${queue}`;
    return { ok: true, message };
  };
  return {
    async purge(body) {
      const queue = needQueue(body);
      const n = await transport.purge(queue);
      await recount(queue);
      return { ok: true, message: `purged ${plural(n, "message")} from ${queue}` };
    },
    replayDeadLetters: (body) => onDeadLetters(body, "replay"),
    purgeDeadLetters: (body) => onDeadLetters(body, "purge"),
  };
}
