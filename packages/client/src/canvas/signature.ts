import {
  CANVAS_TASK,
  cloneSignature,
  createSignature,
  type Signature as WireSignature,
  type TaskDeclaration,
} from "@celery-ts/core";

/** Options a signature carries (Celery's signature options), in celery-ts's spelling. */
export interface SignatureOptions {
  /** The queue. @default the declaration's `queue`, else "celery" */
  queue?: string;
  /** Seconds from now before the task may run. @default 0 */
  countdown?: number;
  /** The earliest time the task may run. @default none */
  eta?: Date;
  /** Seconds from now, or a moment, after which an unstarted task is REVOKED. @default none */
  expires?: number | Date;
  /** Priority 0-9 (see `SendOptions.priority`). @default the declaration's `priority` */
  priority?: number;
  /** The task id, known in advance. @default a random UUID when sent */
  taskId?: string;
  /** Seconds. @default the declaration's `timeLimit` */
  timeLimit?: { soft?: number; hard?: number };
  /** A display name for logs and monitoring. @default none */
  shadow?: string;
  /** Ask the worker not to store a result. @default false */
  ignoreResult?: boolean;
  /** Extra message headers. @default {} */
  headers?: Record<string, unknown>;
}

/** The canvas kinds a signature can be; a group's result is a `GroupResult`. */
export type SignatureKind = "task" | "chain" | "group" | "chord";

/**
 * A task call described as data (Celery's signature): `In` is what it still takes (the previous
 * step's result in a chain), `Out` what it produces. Immutable signatures (`si()`) take nothing
 * from a previous step. Signatures are values: every method returns a new one.
 */
export interface Sig<In extends unknown[], Out, Immutable extends boolean = boolean> {
  readonly kind: SignatureKind;
  readonly immutable: Immutable;
  /** Carries the types only; never set. */
  readonly types?: { in: In; out: Out };
  /** Celery's signature dict, as it goes on the wire. */
  toJSON(): WireSignature;
  /** The same signature with these options over its own. */
  set(options: SignatureOptions): Sig<In, Out, Immutable>;
  /** Runs `callback` with this result after a success (Celery's `link`). */
  link<C extends AnySig>(callback: C & BodyTakes<C, Out>): Sig<In, Out, Immutable>;
  /**
   * Runs `errback` after a failure (Celery's `link_error`) with the failed task's id, as Celery
   * calls an errback that is not a local Python function.
   */
  linkError<C extends AnySig>(errback: C & BodyTakes<C, string>): Sig<In, Out, Immutable>;
}

/** A group's signature: applying it gives a `GroupResult`. */
export interface GroupSig<In extends unknown[], Out extends readonly unknown[]> extends Sig<
  In,
  Out,
  false
> {
  readonly kind: "group";
  /** The same group with these options over its own (`taskId` is the group id). */
  set(options: SignatureOptions): GroupSig<In, Out>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySig = Sig<any, any, boolean>;
/** What a signature produces. */
export type SigOut<S> = S extends Sig<infer _I, infer O, infer _M> ? O : never;
/** What a signature still takes. */
export type SigIn<S> = S extends Sig<infer I, infer _O, infer _M> ? I : never;

/**
 * Every suffix of an argument tuple, `[]` included: the partial arguments a signature may bind.
 * Celery puts the arguments given later (a chain's previous result) before the bound ones, so a
 * signature binds the last parameters and takes the first ones later.
 */
export type ArgSuffix<A extends unknown[]> = number extends A["length"]
  ? A
  : A extends [unknown, ...infer Tail]
    ? A | ArgSuffix<Tail>
    : A;
/** The leading arguments left once the suffix `P` is bound. */
export type ArgHead<A extends unknown[], P extends unknown[]> = number extends A["length"]
  ? A
  : P extends [unknown, ...infer PR]
    ? A extends [...infer Init, unknown]
      ? ArgHead<Init, PR>
      : []
    : A;

/** Wraps a Celery signature dict into a typed, immutable `Sig`. */
export function wrap<In extends unknown[], Out, M extends boolean>(
  kind: SignatureKind,
  wire: WireSignature,
): Sig<In, Out, M> {
  const frozen = Object.freeze(cloneSignature(wire));
  const withOptions = (extra: Record<string, unknown>): Sig<In, Out, M> =>
    wrap(kind, { ...cloneSignature(frozen), options: { ...frozen.options, ...extra } });
  const addTo = (key: "link" | "link_error", item: AnySig): Sig<In, Out, M> => {
    const current = frozen.options[key];
    const list = Array.isArray(current) ? current : current ? [current] : [];
    return withOptions({ [key]: [...list, item.toJSON()] });
  };
  return Object.freeze({
    kind,
    immutable: frozen.immutable as M,
    toJSON: () => cloneSignature(frozen),
    set: (options: SignatureOptions) => withOptions(celeryOptions(options)),
    link: (callback: AnySig) => addTo("link", callback),
    linkError: (errback: AnySig) => addTo("link_error", errback),
  });
}

/** celery-ts option names to Celery's. */
export function celeryOptions(options: SignatureOptions): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (options.queue !== undefined) o.queue = options.queue;
  if (options.countdown !== undefined) o.countdown = options.countdown;
  if (options.eta !== undefined) o.eta = options.eta.toISOString();
  if (options.expires !== undefined) {
    o.expires = options.expires instanceof Date ? options.expires.toISOString() : options.expires;
  }
  if (options.priority !== undefined) o.priority = options.priority;
  if (options.taskId !== undefined) o.task_id = options.taskId;
  if (options.timeLimit?.hard !== undefined) o.time_limit = options.timeLimit.hard;
  if (options.timeLimit?.soft !== undefined) o.soft_time_limit = options.timeLimit.soft;
  if (options.shadow !== undefined) o.shadow = options.shadow;
  if (options.ignoreResult !== undefined) o.ignore_result = options.ignoreResult;
  if (options.headers !== undefined) o.headers = options.headers;
  return o;
}

/** What a signature needs from a declaration: its name and options, whatever its types. */
type NamedTask = Pick<TaskDeclaration, "name" | "options">;

/** A declaration's own options (queue, priority, ...) as a signature's. */
function declarationOptions(declaration: NamedTask): Record<string, unknown> {
  const { queue, priority, timeLimit, ignoreResult, expires } = declaration.options;
  return celeryOptions({
    ...(queue !== undefined && { queue }),
    ...(priority !== undefined && { priority }),
    ...(timeLimit !== undefined && { timeLimit }),
    ...(ignoreResult !== undefined && { ignoreResult }),
    ...(expires !== undefined && { expires }),
  });
}

/**
 * A signature with some (or none) of the task's last arguments bound; it takes the first ones
 * later, e.g. the previous step's result in a chain, which Celery puts before the bound ones:
 * `s(report, 2026)` for `report(months, year)` takes `months`. Celery's `report.s(2026)`.
 */
export function s<A extends unknown[], R, P extends ArgSuffix<A>>(
  task: TaskDeclaration<A, R>,
  ...args: P
): Sig<ArgHead<A, P>, R, false> {
  const options = declarationOptions(task);
  return wrap("task", createSignature(task.name, args, {}, options));
}

/** An immutable signature: all arguments bound, a previous step's result ignored. Celery's `add.si(2, 3)`. */
export function si<A extends unknown[], R>(
  task: TaskDeclaration<A, R>,
  ...args: A
): Sig<[], R, true> {
  const options = declarationOptions(task);
  return wrap("task", createSignature(task.name, args, {}, options, { immutable: true }));
}

/** A chain's steps are valid when each one takes the previous step's result (or is immutable). */
type PrevIndex = [never, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
/** A step that cannot take `Prev`: the error TypeScript shows names the problem. */
export interface StepCannotTakePreviousResult<Prev> {
  readonly "this chain step cannot take the previous step's result": Prev;
}
type StepAfter<S, Prev> =
  S extends Sig<infer _I, infer _O, true>
    ? S
    : S extends Sig<[infer A], infer _O, false>
      ? [Prev] extends [A]
        ? S
        : StepCannotTakePreviousResult<Prev>
      : StepCannotTakePreviousResult<Prev>;
export type ChainSteps<S extends readonly AnySig[]> = {
  [K in keyof S]: K extends `${infer N extends number}`
    ? N extends 0
      ? S[K]
      : StepAfter<S[K], SigOut<S[PrevIndex[N]]>>
    : S[K];
};
type Last<S extends readonly unknown[]> = S extends readonly [...unknown[], infer L] ? L : never;

/**
 * Runs the steps one after another, each given the previous step's result: Celery's `chain(a, b,
 * c)` / `a | b | c`. A step that cannot take the previous result does not compile.
 */
export function chain<S extends [AnySig, ...AnySig[]]>(
  ...steps: ChainSteps<S>
): Sig<SigIn<S[0]>, SigOut<Last<S>>, false> {
  const tasks = (steps as unknown as AnySig[]).map((step) => step.toJSON());
  return wrap(
    "chain",
    createSignature(CANVAS_TASK.chain, [], { tasks }, {}, { subtaskType: "chain" }),
  );
}

/** `unknown` when the chord body takes the header's results (or is immutable), else an error. */
export type BodyTakes<B, Results> =
  B extends Sig<infer _I, infer _O, true>
    ? unknown
    : B extends Sig<[infer A], infer _O, false>
      ? [Results] extends [A]
        ? unknown
        : StepCannotTakePreviousResult<Results>
      : StepCannotTakePreviousResult<Results>;

type GroupOut<S extends readonly AnySig[]> = { -readonly [K in keyof S]: SigOut<S[K]> };

/** Runs the members in parallel; the result is their results in order. Celery's `group(...)`. */
export function group<S extends [AnySig, ...AnySig[]] | AnySig[]>(
  ...members: S
): GroupSig<SigIn<S[0]>, GroupOut<S>> {
  const tasks = (members as AnySig[]).map((member) => member.toJSON());
  return wrap(
    "group",
    createSignature(CANVAS_TASK.group, [], { tasks }, {}, { subtaskType: "group" }),
  ) as GroupSig<SigIn<S[0]>, GroupOut<S>>;
}

/**
 * Runs the header in parallel, then the body with the list of their results: Celery's
 * `chord(header)(body)`. Needs a result backend (it counts the header's parts).
 */
export function chord<H extends [AnySig, ...AnySig[]] | AnySig[], B extends AnySig>(
  header: H | GroupSig<unknown[], GroupOut<H>>,
  body: B & BodyTakes<B, GroupOut<H>>,
): Sig<[], SigOut<B>, false> {
  const headerWire = Array.isArray(header)
    ? createSignature(
        CANVAS_TASK.group,
        [],
        { tasks: header.map((m) => m.toJSON()) },
        {},
        {
          subtaskType: "group",
        },
      )
    : (header as AnySig).toJSON();
  return wrap(
    "chord",
    createSignature(
      CANVAS_TASK.chord,
      [],
      { header: headerWire, body: body.toJSON(), kwargs: {} },
      {},
      { subtaskType: "chord" },
    ),
  );
}

/** Celery's `task.map(items)`: one task running `task(item)` for each item, in order. */
export function map<T, R>(
  task: TaskDeclaration<[T], R>,
  items: readonly NoInfer<T>[],
): Sig<[], R[], true> {
  return mapped("xmap", task, [...items]);
}

/** Celery's `task.starmap(items)`: one task running `task(...item)` for each item, in order. */
export function starmap<A extends unknown[], R>(
  task: TaskDeclaration<A, R>,
  items: readonly NoInfer<A>[],
): Sig<[], R[], true> {
  return mapped("xstarmap", task, [...items]);
}

/**
 * Celery's `task.chunks(items, n)`: the items split into tasks of `n` calls each, sent as a group;
 * the result is each chunk's list of results.
 */
export function chunks<A extends unknown[], R>(
  task: TaskDeclaration<A, R>,
  items: readonly NoInfer<A>[],
  n: number,
): GroupSig<[], R[][]> {
  const inner = createSignature(task.name, [], {}, declarationOptions(task));
  return wrap(
    "group",
    createSignature(
      CANVAS_TASK.chunks,
      [],
      { task: inner, it: [...items], n },
      {},
      {
        subtaskType: "chunks",
        immutable: true,
      },
    ),
  ) as GroupSig<[], R[][]>;
}

function mapped<R>(type: "xmap" | "xstarmap", task: NamedTask, it: unknown[]) {
  const inner = createSignature(task.name, [], {}, declarationOptions(task));
  return wrap<[], R[], true>(
    "task",
    createSignature(
      CANVAS_TASK[type],
      [],
      { task: inner, it },
      {},
      {
        subtaskType: type,
        immutable: true,
      },
    ),
  );
}
