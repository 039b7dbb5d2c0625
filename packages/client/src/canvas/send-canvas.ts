import {
  encodeTaskMessage,
  findCurrentTask,
  prepareCanvas,
  type PublishItem,
  type ResultBackend,
  type ResultNode,
  type Signature,
} from "@celery-ts/core";
import { DEFAULT_QUEUE } from "../send-options.ts";
import { celeryOptions, type SignatureOptions } from "./signature.ts";

/** Options for applying a signature, chain, group or chord. */
export interface CanvasSendOptions<In extends unknown[] = unknown[]> extends SignatureOptions {
  /** Arguments put before the signature's own (the first step's, in a chain). @default [] */
  args?: In;
}

export interface PreparedCanvasSend {
  result: ResultNode;
  batch: PublishItem[];
  /** For logs: the tasks and queues the batch goes to. */
  summary: string;
}

/**
 * Prepares the messages that run `sig`, as Celery's `apply_async` of its type; sent from inside
 * a task, they become that task's children.
 */
export async function prepareCanvasSend(
  sig: Signature,
  options: CanvasSendOptions,
  replyTo: string,
  backend: ResultBackend | undefined,
): Promise<PreparedCanvasSend> {
  const { args, ...signatureOptions } = options;
  const parent = findCurrentTask();
  const prepared = await prepareCanvas(
    sig,
    { ...(args && { args }), options: celeryOptions(signatureOptions) },
    {
      backend,
      replyTo,
      defaultQueue: DEFAULT_QUEUE,
      ...(parent && { parent: { id: parent.id, rootId: parent.rootId } }),
    },
  );
  const batch = prepared.messages.map(({ message, route }) => ({
    message: encodeTaskMessage(message),
    options: route,
  }));
  const names = [
    ...new Set(prepared.messages.map((m) => `${m.message.headers.task} to "${m.route.queue}"`)),
  ];
  const summary = `${batch.length} message(s) (${names.slice(0, 3).join(", ")}${names.length > 3 ? ", ..." : ""})`;
  return { result: prepared.result, batch, summary };
}
