import {
  TaskState,
  type Logger,
  type SignalName,
  type SignalPayloads,
  type Signals,
  type TaskDefinition,
  type TaskHookInfo,
  type TaskMessage,
} from "@celery-ts/core";

/** How a run ended, as the worker settled it: what the hooks and signals are told. */
export type Ending =
  | { state: typeof TaskState.SUCCESS; result: unknown }
  | { state: typeof TaskState.FAILURE; error: unknown }
  | { state: typeof TaskState.RETRY; error: unknown; eta: Date }
  | { state: "IGNORED" | "REJECTED"; reason: string };

export interface Lifecycle {
  /** Before the task's function runs: `taskPrerun`. Undefined when there is no listener. */
  prerun(task: TaskDefinition, message: TaskMessage): Promise<void> | undefined;
  /**
   * After the ending is stored and before the message is settled: the task's own hook
   * (`onSuccess`, `onFailure`, `onRetry`), its signal, `afterReturn`, then `taskPostrun`.
   * Undefined when the task has no hook and no signal has a listener: nothing to wait for.
   */
  ended(task: TaskDefinition, message: TaskMessage, ending: Ending): Promise<void> | undefined;
  /** The task expired before it ran: `taskRevoked`. */
  revoked(task: TaskDefinition, message: TaskMessage): Promise<void>;
  workerReady(hostname: string, queues: readonly string[]): Promise<void>;
  workerShutdown(hostname: string): Promise<void>;
}

/**
 * Calls per-task hooks and app-wide signals for a worker. Every hook and listener is awaited; one
 * that throws is logged with the task's name and id, and changes nothing about the task's result
 * or its acknowledgement.
 */
export function createLifecycle(signals: Signals, log: Logger): Lifecycle {
  const report = (what: string, fields: Record<string, unknown>, error: unknown): void => {
    log.error(`${what} threw; the task's result and acknowledgement are not affected`, {
      ...fields,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
  };
  const guard = async (what: string, fields: Record<string, unknown>, call: () => unknown) => {
    try {
      await call();
    } catch (error) {
      report(what, fields, error);
    }
  };

  const send = async <N extends SignalName>(
    name: N,
    payload: SignalPayloads[N],
    fields: Record<string, unknown> = {},
  ): Promise<void> => {
    if (!signals.has(name)) return;
    for (const error of await signals.send(name, payload)) {
      report(`a "${name}" signal listener`, fields, error);
    }
  };

  return {
    prerun(task, message) {
      if (!signals.has("taskPrerun")) return undefined;
      const about = info(task, message);
      return send("taskPrerun", about, { task: task.name, id: about.id });
    },

    ended(task, message, ending) {
      return quiet(signals, task, ending) ? undefined : ended(task, message, ending);
    },

    async revoked(task, message) {
      const about = info(task, message);
      await send("taskRevoked", { ...about, reason: "expired" }, { task: task.name, id: about.id });
    },

    workerReady: (hostname, queues) => send("workerReady", { hostname, queues }, { hostname }),
    workerShutdown: (hostname) => send("workerShutdown", { hostname }, { hostname }),
  };

  async function ended(task: TaskDefinition, message: TaskMessage, ending: Ending): Promise<void> {
    const about = info(task, message);
    const fields = { task: task.name, id: about.id };
    const hooks = task.options;
    let result: unknown;
    switch (ending.state) {
      case TaskState.SUCCESS:
        result = ending.result;
        if (hooks.onSuccess)
          await guard("onSuccess", fields, () => hooks.onSuccess!(result, about));
        await send("taskSuccess", { ...about, result }, fields);
        break;
      case TaskState.FAILURE:
        result = ending.error;
        if (hooks.onFailure)
          await guard("onFailure", fields, () => hooks.onFailure!(result, about));
        await send("taskFailure", { ...about, error: result }, fields);
        break;
      case TaskState.RETRY:
        result = ending.error;
        if (hooks.onRetry) await guard("onRetry", fields, () => hooks.onRetry!(result, about));
        await send("taskRetry", { ...about, error: result, eta: ending.eta }, fields);
        break;
      default:
        result = ending.reason;
    }
    if (hooks.afterReturn && ending.state !== "IGNORED" && ending.state !== "REJECTED") {
      await guard("afterReturn", fields, () => hooks.afterReturn!(ending.state, result, about));
    }
    await send("taskPostrun", { ...about, state: ending.state, result }, fields);
  }
}

const info = (task: TaskDefinition, message: TaskMessage): TaskHookInfo => ({
  id: message.headers.id,
  task: task.name,
  args: message.args,
  kwargs: message.kwargs,
  retries: message.headers.retries,
});

/** Most tasks have no hook and no listener: no info object, no async call, nothing to await. */
function quiet(signals: Signals, task: TaskDefinition, ending: Ending): boolean {
  const hooks = task.options;
  if (hooks.onSuccess || hooks.onFailure || hooks.onRetry || hooks.afterReturn) return false;
  const signal = ENDING_SIGNALS[ending.state];
  return !signals.has("taskPostrun") && (signal === undefined || !signals.has(signal));
}

/** The signal each ending sends besides `taskPostrun`. */
const ENDING_SIGNALS: Partial<Record<Ending["state"], SignalName>> = {
  [TaskState.SUCCESS]: "taskSuccess",
  [TaskState.FAILURE]: "taskFailure",
  [TaskState.RETRY]: "taskRetry",
};
