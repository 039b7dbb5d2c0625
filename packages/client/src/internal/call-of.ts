import { bindArguments, taskParams, type TaskDeclaration, type TaskOptions } from "@celery-ts/core";

/**
 * The wire `args` and `kwargs` of one call through a task handle. A keywords-style task's single
 * object goes out as keyword arguments (as Python sends `add.delay(a=1, b=2)`); a `{ args, kwargs }`
 * call goes out as given. A task with `params` is bound here as the worker will bind it, so a
 * call that cannot fit throws (Python's TypeError wording) before anything is sent.
 */
export function callOf(
  declaration: TaskDeclaration<unknown[], unknown, object> & { options: TaskOptions },
  input: unknown,
  sendOptions: { kwargs?: Record<string, unknown> },
): { args: unknown[]; kwargs: Record<string, unknown> } {
  const params = taskParams(declaration);
  let args: unknown[];
  let kwargs: Record<string, unknown>;
  if (Array.isArray(input)) {
    if (params?.style === "keywords" && input.length === 1 && isPlainObject(input[0])) {
      args = [];
      kwargs = { ...input[0], ...sendOptions.kwargs };
    } else {
      args = input;
      kwargs = sendOptions.kwargs ?? {};
    }
  } else {
    const call = (input ?? {}) as { args?: unknown[]; kwargs?: Record<string, unknown> };
    args = call.args ?? [];
    kwargs = { ...call.kwargs, ...sendOptions.kwargs };
  }
  if (params) bindArguments(params, args, kwargs);
  return { args, kwargs };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
