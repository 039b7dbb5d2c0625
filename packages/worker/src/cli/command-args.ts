/**
 * How Celery's CLI turns `celery inspect|control <method> [args...]` into the command's keyword
 * arguments (`Panel.meta`: named arguments with their types, then one variadic list).
 */
interface CommandSpec {
  kind: "inspect" | "control";
  args?: [name: string, type: "str" | "int" | "float" | "bool"][];
  variadic?: string;
  help: string;
}

export const COMMAND_SPECS: Record<string, CommandSpec> = {
  ping: { kind: "inspect", help: "ping the workers" },
  active: { kind: "inspect", help: "tasks running now" },
  reserved: { kind: "inspect", help: "tasks taken from the broker, waiting for a slot" },
  scheduled: { kind: "inspect", help: "tasks held for their eta/countdown" },
  registered: { kind: "inspect", variadic: "taskinfoitems", help: "registered task names" },
  stats: { kind: "inspect", help: "worker statistics" },
  revoked: { kind: "inspect", help: "revoked task ids" },
  active_queues: { kind: "inspect", help: "queues consumed" },
  query_task: { kind: "inspect", variadic: "ids", help: "<id>...: where these tasks are" },
  conf: { kind: "inspect", args: [["with_defaults", "bool"]], help: "configuration" },
  report: { kind: "inspect", help: "software versions" },
  clock: { kind: "inspect", help: "the logical clock" },
  revoke: { kind: "control", variadic: "task_id", help: "<id>...: revoke tasks" },
  terminate: {
    kind: "control",
    args: [["signal", "str"]],
    variadic: "task_id",
    help: "<signal> <id>...: revoke and stop running tasks",
  },
  rate_limit: {
    kind: "control",
    args: [
      ["task_name", "str"],
      ["rate_limit", "str"],
    ],
    help: "<task> <rate, e.g. 10/s | 10/m | 10/h>",
  },
  time_limit: {
    kind: "control",
    args: [
      ["task_name", "str"],
      ["soft", "float"],
      ["hard", "float"],
    ],
    help: "<task> <soft seconds> [hard seconds]",
  },
  shutdown: { kind: "control", help: "stop the workers (warm)" },
  pool_grow: { kind: "control", args: [["n", "int"]], help: "[n=1]: n more tasks at once" },
  pool_shrink: { kind: "control", args: [["n", "int"]], help: "[n=1]: n fewer tasks at once" },
  add_consumer: {
    kind: "control",
    args: [
      ["queue", "str"],
      ["exchange", "str"],
      ["exchange_type", "str"],
      ["routing_key", "str"],
    ],
    help: "<queue>: consume a queue too",
  },
  cancel_consumer: {
    kind: "control",
    args: [["queue", "str"]],
    help: "<queue>: stop consuming it",
  },
  enable_events: { kind: "control", help: "start sending task events" },
  disable_events: { kind: "control", help: "stop sending task events" },
  heartbeat: { kind: "control", help: "send a heartbeat event now" },
};

function convert(value: string, type: "str" | "int" | "float" | "bool", name: string): unknown {
  if (type === "str") return value;
  if (type === "bool") return ["1", "true", "yes", "on"].includes(value.toLowerCase());
  const n = Number(value);
  if (!Number.isFinite(n) || (type === "int" && !Number.isInteger(n))) {
    throw new Error(
      `${name} takes ${type === "int" ? "a whole number" : "a number"}, not "${value}"`,
    );
  }
  return n;
}

/** The keyword arguments for `method` from the command line's positionals. */
export function commandArguments(method: string, positionals: string[]): Record<string, unknown> {
  const spec = COMMAND_SPECS[method];
  if (!spec) return {};
  const kwargs: Record<string, unknown> = {};
  const rest = [...positionals];
  for (const [name, type] of spec.args ?? []) {
    const value = rest.shift();
    if (value !== undefined) kwargs[name] = convert(value, type, name);
  }
  if (spec.variadic) kwargs[spec.variadic] = rest;
  else if (rest.length > 0) throw new Error(`${method} takes no more arguments than: ${spec.help}`);
  return kwargs;
}

export function commandList(kind: "inspect" | "control"): string {
  return Object.entries(COMMAND_SPECS)
    .filter(([, spec]) => spec.kind === kind)
    .map(([name, spec]) => `  ${name.padEnd(16)} ${spec.help}`)
    .join("\n");
}
