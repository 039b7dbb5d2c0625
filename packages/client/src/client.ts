import type { TaskDeclaration } from "@celery-ts/core";
import { createAsyncResult, type AsyncResult } from "./async-result.ts";
import { restoreGroup, type AnyResult, type GroupResult } from "./canvas/group-result.ts";
import type { CanvasSendOptions } from "./canvas/send-canvas.ts";
import type { AnySig, GroupSig, Sig } from "./canvas/signature.ts";
import type { ClientOptions } from "./client-options.ts";
import type { Control } from "./control.ts";
import { callOf } from "./internal/call-of.ts";
import { createClientContext, type ClientContext } from "./internal/client-context.ts";
import { sendBatch } from "./internal/send-batch.ts";
import { sendTask } from "./internal/send-task.ts";
import type { SendOptions, SendTaskOptions } from "./send-options.ts";
import type { TaskCall, TaskHandle } from "./task-handle.ts";

export { DEFAULT_PUBLISH_RETRY, type ClientOptions } from "./client-options.ts";

/** Sends tasks and reads their results. Create one per process and share it. */
export interface Client {
  /** Binds a task declaration (or definition) to this client, keeping its argument and result types. */
  task<Args extends unknown[], Result, Kwargs extends object = object>(
    declaration: TaskDeclaration<Args, Result, Kwargs>,
  ): TaskHandle<Args, Result, Kwargs>;
  /**
   * Sends a task by name, e.g. one only a Python worker implements. `R` types the result; nothing
   * checks it at runtime.
   */
  sendTask<R = unknown>(name: string, options?: SendTaskOptions): Promise<AsyncResult<R>>;
  /**
   * Sends a signature, chain, group, chord, chunks, map or starmap, as Celery's `apply_async`
   * does; all its messages go out together (one round trip where the broker allows). A group
   * resolves a `GroupResult` of its members' typed results; anything else an `AsyncResult` of
   * its last step's, with `parent` linking the earlier steps.
   */
  applyAsync<In extends unknown[], Out extends readonly unknown[]>(
    sig: GroupSig<In, Out>,
    options?: CanvasSendOptions<In>,
  ): Promise<GroupResult<Out>>;
  applyAsync<In extends unknown[], Out>(
    sig: Sig<In, Out>,
    options?: CanvasSendOptions<In>,
  ): Promise<AsyncResult<Out>>;
  /**
   * Sends many independent calls at once, in as few broker round trips as the transport allows
   * (one pipeline on Redis, batches of 10 on SQS, confirms awaited together on RabbitMQ), without
   * making them a group. Resolves their results in order.
   */
  sendMany(sigs: readonly AnySig[]): Promise<AnyResult[]>;
  /** A group saved with `GroupResult.save()` (here or by Python), or undefined. */
  restoreGroup<Out extends readonly unknown[] = unknown[]>(
    groupId: string,
  ): Promise<GroupResult<Out> | undefined>;
  /** Remote control of the workers (`celery inspect` / `celery control`), Python ones too. */
  readonly control: Control;
  /** A handle on a task sent earlier, by anyone, from its id. */
  asyncResult<R = unknown>(taskId: string): AsyncResult<R>;
  /** Resolves URLs and connects the broker and backend now, rather than on first use. Idempotent. */
  connect(): Promise<void>;
  /**
   * Waits for sends under way, then closes the broker and backend the client built from URLs
   * (objects given to it stay open: they are the caller's). Idempotent; afterwards every method
   * rejects with a `CLOSED` error.
   */
  close(): Promise<void>;
}

/** Binds a declaration to the client: its `delay` and `applyAsync` send through `sendTask`. */
function taskHandle<Args extends unknown[], Result, Kwargs extends object>(
  ctx: ClientContext,
  declaration: TaskDeclaration<Args, Result, Kwargs>,
): TaskHandle<Args, Result, Kwargs> {
  ctx.ensureOpen();
  const { name, options: defaults } = declaration;
  const call = async (input: unknown, sendOptions: SendOptions) => {
    const { args, kwargs } = callOf(declaration, input, sendOptions);
    return sendTask<Result>(ctx, name, args, { ...sendOptions, kwargs }, defaults);
  };
  return Object.freeze({
    name,
    declaration,
    delay: (...args: Args) => call(args, {}),
    applyAsync: (input: Args | TaskCall<Args, Kwargs>, sendOptions: SendOptions = {}) =>
      call(input, sendOptions),
  });
}

export function createClient(options: ClientOptions = {}): Client {
  const ctx = createClientContext(options);
  return {
    async applyAsync(sig: AnySig, options: CanvasSendOptions = {}) {
      const [result] = await sendBatch(ctx, [sig], options);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the overloads type it
      return result as any;
    },
    sendMany(sigs: readonly AnySig[]) {
      return sendBatch(ctx, sigs, {});
    },
    restoreGroup<Out extends readonly unknown[] = unknown[]>(groupId: string) {
      ctx.ensureOpen();
      return restoreGroup<Out>(groupId, ctx.results);
    },
    control: ctx.control,
    task: (declaration) => taskHandle(ctx, declaration),
    sendTask<R = unknown>(name: string, { args = [], ...sendOptions }: SendTaskOptions = {}) {
      return sendTask<R>(ctx, name, args, sendOptions, {});
    },
    asyncResult<R = unknown>(taskId: string): AsyncResult<R> {
      ctx.ensureOpen();
      return createAsyncResult<R>(taskId, undefined, ctx.results);
    },
    async connect() {
      ctx.ensureOpen();
      await Promise.all([ctx.broker.connect(), ctx.backend?.connect()]);
    },
    close: () => ctx.close(),
  };
}
