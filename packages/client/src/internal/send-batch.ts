import { publishAll, unsentOf, type PublishItem } from "@celery-ts/core";
import { resultFromNode, type AnyResult } from "../canvas/group-result.ts";
import { prepareCanvasSend, type CanvasSendOptions } from "../canvas/send-canvas.ts";
import type { AnySig } from "../canvas/signature.ts";
import type { ClientContext } from "./client-context.ts";
import { publishWithRetry } from "./publish-with-retry.ts";

/**
 * Publishes the messages of canvases together, with the client's retry policy; close() waits
 * for it. Resolves one result per signature, in order.
 */
export function sendBatch(
  ctx: ClientContext,
  sigs: readonly AnySig[],
  options: CanvasSendOptions,
): Promise<AnyResult[]> {
  return ctx.track(async () => {
    const stored = ctx.backend && (await ctx.backend.get());
    const replyTo = await ctx.replyAddress();
    const prepared = await Promise.all(
      sigs.map((sig) => prepareCanvasSend(sig.toJSON(), options, replyTo, stored)),
    );
    const batch = prepared.flatMap((p) => p.batch);
    const transport = await ctx.broker.get();
    const summary = prepared.map((p) => p.summary).join("; ");
    // A retry sends only what the failed attempt left off the broker.
    let unsent: readonly PublishItem[] = batch;
    const attempt = async (): Promise<void> => {
      try {
        await publishAll(transport, unsent);
      } catch (error) {
        unsent = unsentOf(error) ?? unsent;
        throw error;
      }
    };
    await publishWithRetry(attempt, {
      what: `${summary} on the ${transport.name} broker`,
      policy: ctx.publishPolicy(undefined),
      logger: ctx.logger,
      fields: { messages: batch.length, broker: transport.name },
    });
    ctx.logger.debug("canvas sent", { messages: batch.length });
    return prepared.map((p) => resultFromNode(p.result, ctx.results));
  });
}
