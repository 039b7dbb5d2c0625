import {
  encodeTaskMessage,
  traceSend,
  type CoordinationStore,
  type PublishOptions,
  type TaskMessage,
  type TaskOptions,
} from "@celery-ts/core";
import { createAsyncResult, type AsyncResult } from "../async-result.ts";
import { taskSentFields } from "../control.ts";
import { prepareSend, type SendOptions } from "../send-options.ts";
import type { ClientContext } from "./client-context.ts";
import { clientError } from "./errors.ts";
import { sendPublishSignal } from "./publish-signals.ts";
import { publishWithRetry } from "./publish-with-retry.ts";
import { claimUnique, uniqueKey } from "./unique.ts";

/** A unique task's key, claimed in the store before its message is sent. */
interface UniqueClaim {
  store: CoordinationStore;
  key: string;
}

/** Sends one task (unless a unique task's key is held); close() waits for it, retries included. */
export function sendTask<R>(
  ctx: ClientContext,
  name: string,
  args: unknown[],
  options: SendOptions,
  defaults: TaskOptions,
): Promise<AsyncResult<R>> {
  return ctx.track(async () => {
    const { message, route } = prepareSend(name, args, options, defaults, await ctx.replyAddress());
    const unique = options.unique === false ? undefined : (options.unique ?? defaults.unique);
    let claimed: UniqueClaim | undefined;
    if (unique) {
      if (!ctx.store) {
        throw clientError(
          "CONFIG",
          `task ${name} is unique, which needs a coordination store shared by the producers: ` +
            "give the client a store option (e.g. redis://127.0.0.1:6379/0)",
        );
      }
      const key = uniqueKey(name, unique, args, message.kwargs);
      const held = await ctx.store.get();
      const holder = await claimUnique(held, key, message.headers.id, unique);
      if (holder !== undefined) {
        ctx.logger.debug("duplicate of a unique task; not sent", { task: name, id: holder, key });
        return createAsyncResult<R>(holder, name, ctx.results);
      }
      claimed = { store: held, key };
    }
    return traceSend(message, route.queue, () =>
      publishPrepared<R>(ctx, name, message, route, options, claimed),
    );
  });
}

async function publishPrepared<R>(
  ctx: ClientContext,
  name: string,
  message: TaskMessage,
  route: PublishOptions,
  options: SendOptions,
  claimed: UniqueClaim | undefined,
): Promise<AsyncResult<R>> {
  const { logger, signals } = ctx;
  await sendPublishSignal(signals, "beforeTaskPublish", message, route.queue, logger);
  const wire = encodeTaskMessage(message);
  const id = message.headers.id;
  const transport = await ctx.broker.get();
  const fields = { task: name, id, queue: route.queue, broker: transport.name };
  try {
    await publishWithRetry(() => transport.publish(wire, route), {
      what: `task ${name}[${id}] to queue "${route.queue}" on the ${transport.name} broker`,
      policy: ctx.publishPolicy(options.publishRetry),
      logger,
      fields,
    });
  } catch (error) {
    // Not sent: free the unique key so that a later send is not taken for a duplicate.
    await claimed?.store.deleteIfEquals(claimed.key, id).catch(() => undefined);
    throw error;
  }
  logger.debug("task sent", fields);
  await sendPublishSignal(signals, "afterTaskPublish", message, route.queue, logger);
  if (ctx.sendTaskEvents) sendTaskSentEvent(ctx, message, route.queue, fields);
  return createAsyncResult<R>(id, name, ctx.results);
}

/** Celery's `task-sent` event, in the background: a failure is logged, never the send's. */
function sendTaskSentEvent(
  ctx: ClientContext,
  message: TaskMessage,
  queue: string,
  fields: Record<string, unknown>,
): void {
  void ctx.control
    .events()
    .then((events) => events.send("task-sent", taskSentFields(message, queue)))
    .catch((error: unknown) =>
      ctx.logger.warn("could not send a task-sent event", { ...fields, error: String(error) }),
    );
}
