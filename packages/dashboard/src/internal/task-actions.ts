import type { Client } from "@celery-ts/client";
import type { FleetState, TaskView } from "../fleet-state.ts";
import { ActionError, needString, type Action } from "./action-kit.ts";
import { parsePythonLiteral } from "./python-literal.ts";

const RATE = /^\d+(\.\d+)?(\/[smh])?$/;

/** A recorded task's args and kwargs, read back from the reprs its events carried. */
function recordedArguments(
  task: TaskView,
  id: string,
): { args: unknown[]; kwargs: Record<string, unknown> } {
  let args: unknown;
  let kwargs: unknown;
  try {
    args = parsePythonLiteral(task.args ?? "()");
    kwargs = parsePythonLiteral(task.kwargs ?? "{}");
  } catch (error) {
    throw new ActionError(
      `cannot re-send ${task.name}[${id}]: its arguments were recorded as a repr that is not a plain literal (${(error as Error).message})`,
    );
  }
  if (
    !Array.isArray(args) ||
    typeof kwargs !== "object" ||
    kwargs === null ||
    Array.isArray(kwargs)
  )
    throw new ActionError(
      `cannot re-send ${task.name}[${id}]: its arguments are not a list and a dict`,
    );
  return { args, kwargs: kwargs as Record<string, unknown> };
}

/** The actions on tasks: revoke, retry (send again), rate limit. */
export function taskActions(deps: { client: Client; state: FleetState }): Record<string, Action> {
  const { client, state } = deps;
  return {
    async revoke(body) {
      const id = needString(body, "id");
      const terminate = body.terminate === true;
      await client.control.revoke(id, { terminate });
      return { ok: true, message: `revoke${terminate ? " (terminate)" : ""} sent for ${id}` };
    },
    async retry(body) {
      const id = needString(body, "id");
      const task = state.tasks.get(id);
      if (!task?.name)
        throw new ActionError(
          `task ${id} is not in the dashboard's window: its name and arguments are unknown`,
        );
      const { args, kwargs } = recordedArguments(task, id);
      // Celery's events name no queue on receipt: a worker that consumes one queue took it from there.
      const workerQueues = state.workers.get(task.worker)?.queues ?? [];
      const known = task.queue ?? (workerQueues.length === 1 ? workerQueues[0] : undefined);
      const queue = typeof body.queue === "string" && body.queue ? body.queue : (known ?? "celery");
      const sent = await client.sendTask(task.name, { args, kwargs, queue });
      return {
        ok: true,
        message: `${task.name} sent again as ${sent.id} to ${queue}`,
        taskId: sent.id,
      };
    },
    async rateLimit(body) {
      const task = needString(body, "task");
      const rate = needString(body, "rate");
      if (!RATE.test(rate))
        throw new ActionError(
          `a rate is like 10/s, 100/m or 1000/h (0 for none), not ${JSON.stringify(rate)}`,
        );
      const replies = await client.control.call(
        "rate_limit",
        { task_name: task, rate_limit: rate },
        { timeout: 1 },
      );
      const nodes = replies.flatMap((reply) => Object.keys(reply));
      return {
        ok: nodes.length > 0,
        message: nodes.length
          ? `rate limit ${rate} set for ${task} on ${nodes.join(", ")}`
          : "no worker replied",
      };
    },
  };
}
