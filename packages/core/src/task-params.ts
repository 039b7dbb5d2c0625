import { CeleryTsError } from "./errors.ts";

/**
 * How a task's function takes its arguments:
 * - `"positional"`: `run(a, b)`, the declared names bound in order (Python's `def add(a, b)`);
 * - `"keywords"`: `run({ a, b })`, one object holding every bound argument by name.
 */
export type ParamStyle = "positional" | "keywords";

/**
 * One declared parameter, as written in a task's `params`: `"a"` (required), `"b?"` (optional: the
 * function's default applies when the call leaves it out), `"*rest"` (extra positional arguments)
 * or `"**extra"` (extra keyword arguments, as an object).
 */
export interface ParamSpec {
  readonly name: string;
  readonly kind: "required" | "optional" | "rest" | "kwargs";
}

/** A task's parameters, parsed once: what `bindArguments` needs. */
export interface ParamList {
  /** The name Python's error messages use: `add` for the task `tasks.add`. */
  readonly functionName: string;
  readonly style: ParamStyle;
  readonly named: readonly ParamSpec[];
  readonly rest: string | undefined;
  readonly kwargs: string | undefined;
}

/**
 * A call whose arguments do not fit the task's parameters. Its name is `TypeError` and its message
 * is Python's, word for word, so the stored FAILURE reads `builtins.TypeError` on both sides.
 */
export class TaskArgumentsError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "TypeError";
  }
}

/** `tasks.add` -> `add`: the function name Python shows in its TypeError messages. */
export function pythonFunctionName(taskName: string): string {
  return taskName.slice(taskName.lastIndexOf(".") + 1) || taskName;
}

/**
 * Parses `params` (e.g. `["a", "b?", "**extra"]`) with Python's rules for a `def`: names unique,
 * no required parameter after an optional one, at most one `*rest` after the named ones, `**extra`
 * last. Throws a `CONFIG` error naming the task otherwise.
 */
export function parseParams(
  taskName: string,
  params: readonly string[],
  style: ParamStyle = "positional",
): ParamList {
  const bad = (why: string) =>
    new CeleryTsError("CONFIG", `task "${taskName}": params ${JSON.stringify(params)}: ${why}`);
  const named: ParamSpec[] = [];
  let rest: string | undefined;
  let kwargs: string | undefined;
  const seen = new Set<string>();
  for (const raw of params) {
    if (typeof raw !== "string") throw bad("every parameter name must be a string");
    const spec = parseOne(raw);
    if (!/^[A-Za-z_$][\w$]*$/.test(spec.name)) throw bad(`"${raw}" is not a parameter name`);
    if (seen.has(spec.name)) throw bad(`"${spec.name}" is declared twice`);
    seen.add(spec.name);
    if (kwargs !== undefined) throw bad(`"**${kwargs}" must be the last parameter`);
    if (spec.kind === "kwargs") kwargs = spec.name;
    else if (spec.kind === "rest") {
      if (rest !== undefined) throw bad("only one *rest parameter is allowed");
      rest = spec.name;
    } else {
      if (rest !== undefined) throw bad(`"${raw}" comes after "*${rest}", which takes the rest`);
      const previous = named.at(-1);
      if (spec.kind === "required" && previous?.kind === "optional") {
        throw bad(
          `required "${raw}" follows optional "${previous.name}?" (as in Python, it cannot)`,
        );
      }
      named.push(spec);
    }
  }
  if (style === "positional" && rest !== undefined && kwargs !== undefined) {
    throw bad(
      'a positional function cannot take both "*rest" and "**extra" (a JavaScript rest ' +
        'parameter must be last): use style "keywords", or one of the two',
    );
  }
  return { functionName: pythonFunctionName(taskName), style, named, rest, kwargs };
}

function parseOne(raw: string): ParamSpec {
  if (raw.startsWith("**")) return { name: raw.slice(2), kind: "kwargs" };
  if (raw.startsWith("*")) return { name: raw.slice(1), kind: "rest" };
  if (raw.endsWith("?")) return { name: raw.slice(0, -1), kind: "optional" };
  return { name: raw, kind: "required" };
}

/** Arguments bound to parameters, as Python binds a call to a `def`. */
export interface BoundArguments {
  /** One value per named parameter, in order; `undefined` only for a left-out optional one. */
  readonly values: readonly unknown[];
  /** Which named parameters the call gave (an optional one may be left out). */
  readonly given: readonly boolean[];
  /** Positional arguments beyond the named ones (only with a `*rest` parameter). */
  readonly extraArgs: readonly unknown[];
  /** Keyword arguments naming no parameter (only with a `**extra` parameter). */
  readonly extraKwargs: Readonly<Record<string, unknown>>;
}

/**
 * Binds positional `args` then keyword `kwargs` to `params` exactly as Python binds a call, and
 * throws a `TaskArgumentsError` with Python's message when they do not fit: an unexpected keyword,
 * multiple values for one parameter, too many positional arguments, or missing required ones
 * (checked in Python's order).
 */
export function bindArguments(
  params: ParamList,
  args: readonly unknown[],
  kwargs: Readonly<Record<string, unknown>>,
): BoundArguments {
  const { named, functionName: fn } = params;
  const values: unknown[] = new Array<unknown>(named.length).fill(undefined);
  const given: boolean[] = new Array<boolean>(named.length).fill(false);
  const positional = Math.min(args.length, named.length);
  for (let i = 0; i < positional; i++) {
    values[i] = args[i];
    given[i] = true;
  }
  const extraKwargs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(kwargs)) {
    const index = named.findIndex((spec) => spec.name === key);
    if (index < 0) {
      if (params.kwargs === undefined) {
        throw new TaskArgumentsError(`${fn}() got an unexpected keyword argument '${key}'`);
      }
      extraKwargs[key] = value;
    } else if (given[index]) {
      throw new TaskArgumentsError(`${fn}() got multiple values for argument '${key}'`);
    } else {
      values[index] = value;
      given[index] = true;
    }
  }
  if (args.length > named.length && params.rest === undefined) {
    throw new TaskArgumentsError(tooManyPositional(fn, named, args.length));
  }
  const missing = named.filter((spec, i) => spec.kind === "required" && !given[i]);
  if (missing.length > 0) {
    const plural = missing.length === 1 ? "argument" : "arguments";
    throw new TaskArgumentsError(
      `${fn}() missing ${missing.length} required positional ${plural}: ${listNames(missing)}`,
    );
  }
  return { values, given, extraArgs: args.slice(named.length), extraKwargs };
}

function tooManyPositional(fn: string, named: readonly ParamSpec[], count: number): string {
  const required = named.filter((spec) => spec.kind === "required").length;
  const takes =
    required === named.length
      ? `${named.length} positional argument${named.length === 1 ? "" : "s"}`
      : `from ${required} to ${named.length} positional arguments`;
  return `${fn}() takes ${takes} but ${count} ${count === 1 ? "was" : "were"} given`;
}

/** Python's list of names: 'a'; 'a' and 'b'; 'a', 'b', and 'c'. */
function listNames(specs: readonly ParamSpec[]): string {
  const quoted = specs.map((spec) => `'${spec.name}'`);
  if (quoted.length === 1) return quoted[0]!;
  if (quoted.length === 2) return `${quoted[0]} and ${quoted[1]}`;
  return `${quoted.slice(0, -1).join(", ")}, and ${quoted.at(-1)}`;
}

/**
 * The arguments to call a task's function with, after binding: `run(...callArguments(...))`.
 * Positional style: the named values (a left-out optional one as `undefined`, so the function's
 * default applies), then `*rest` spread, or the `**extra` object. Keywords style: one object.
 */
export function callArguments(params: ParamList, bound: BoundArguments): unknown[] {
  if (params.style === "keywords") {
    const object: Record<string, unknown> = {};
    params.named.forEach((spec, i) => {
      if (bound.given[i]) object[spec.name] = bound.values[i];
    });
    if (params.rest !== undefined) object[params.rest] = bound.extraArgs;
    if (params.kwargs !== undefined) object[params.kwargs] = bound.extraKwargs;
    return [object];
  }
  if (params.rest !== undefined) return [...bound.values, ...bound.extraArgs];
  if (params.kwargs !== undefined) return [...bound.values, bound.extraKwargs];
  // Trailing left-out optionals are dropped, so `arguments.length` is what the call gave.
  let length = bound.values.length;
  while (length > 0 && !bound.given[length - 1]) length--;
  return bound.values.slice(0, length);
}

/**
 * Checks a call of a task that declares no parameter names: keyword arguments are refused (they
 * would be lost), and fewer positional arguments than the function's required parameters
 * (`run.length`) are refused rather than run with `undefined`.
 */
export function checkUndeclaredCall(
  taskName: string,
  requiredCount: number,
  args: readonly unknown[],
  kwargs: Readonly<Record<string, unknown>>,
): void {
  const fn = pythonFunctionName(taskName);
  const firstKey = Object.keys(kwargs)[0];
  if (firstKey !== undefined) {
    throw new TaskArgumentsError(`${fn}() got an unexpected keyword argument '${firstKey}'`);
  }
  if (args.length < requiredCount) {
    const missing = requiredCount - args.length;
    throw new TaskArgumentsError(
      `${fn}() missing ${missing} required positional argument${missing === 1 ? "" : "s"}`,
    );
  }
}

const parsed = new WeakMap<object, ParamList>();

/** What `taskCallArguments` reads from a task: its name, options and (on a worker) function. */
export interface CallableTask {
  readonly name: string;
  readonly options: { readonly params?: readonly string[]; readonly style?: ParamStyle };
  readonly run?: (...args: never[]) => unknown;
}

/** The task's parsed `params` (cached per task), or undefined when it declares none. */
export function taskParams(task: CallableTask): ParamList | undefined {
  const { params, style } = task.options;
  if (params === undefined) return undefined;
  let list = parsed.get(task.options);
  if (!list) {
    list = parseParams(task.name, params, style);
    parsed.set(task.options, list);
  }
  return list;
}

/**
 * Binds a call's `args` and `kwargs` to a task as Python would and returns what to spread into its
 * function; throws a `TaskArgumentsError` (Python's TypeError wording) when they do not fit. A
 * task that declares no `params` takes positional arguments only (see `checkUndeclaredCall`).
 */
export function taskCallArguments(
  task: CallableTask,
  args: readonly unknown[],
  kwargs: Readonly<Record<string, unknown>>,
): unknown[] {
  const params = taskParams(task);
  if (params) return callArguments(params, bindArguments(params, args, kwargs));
  checkUndeclaredCall(task.name, task.run?.length ?? 0, args, kwargs);
  return [...args];
}
