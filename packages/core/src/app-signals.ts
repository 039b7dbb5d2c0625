// App-wide lifecycle signals, as Celery's `celery.signals` (before_task_publish, task_prerun, ...).
// Not to be confused with task-signals.ts: those are errors a task throws to steer the worker
// (retry, reject, ignore); these are notifications the client and worker send to listeners.

/** What every task signal carries: which task, which run. */
export interface TaskSignalInfo {
  /** The task's name. */
  readonly task: string;
  readonly id: string;
  readonly args: readonly unknown[];
  readonly kwargs: Readonly<Record<string, unknown>>;
  /** How many times the task was retried before (0 on the first run or send). */
  readonly retries: number;
}

/** The payload of each signal, by name. */
export interface SignalPayloads {
  /**
   * Celery's `before_task_publish`: the message is built, not yet sent. `headers` are the
   * message's headers: a listener may add or change entries (e.g. a tracing header); they are
   * sent. A listener that throws stops nothing: the error is logged and the task is sent.
   */
  beforeTaskPublish: TaskSignalInfo & { readonly queue: string; headers: Record<string, unknown> };
  /** Celery's `after_task_publish`: the broker has the message. */
  afterTaskPublish: TaskSignalInfo & { readonly queue: string };
  /** Celery's `task_prerun`: the worker is about to run the task's function. */
  taskPrerun: TaskSignalInfo;
  /** Celery's `task_postrun`: the run ended (any state), its result stored. */
  taskPostrun: TaskSignalInfo & { readonly state: string; readonly result: unknown };
  /** Celery's `task_success`. */
  taskSuccess: TaskSignalInfo & { readonly result: unknown };
  /** Celery's `task_failure`: the task failed for good (retries, if any, exhausted). */
  taskFailure: TaskSignalInfo & { readonly error: unknown };
  /** Celery's `task_retry`: the task will run again. */
  taskRetry: TaskSignalInfo & { readonly error: unknown; readonly eta: Date };
  /** Celery's `task_revoked`: the task expired before it ran; it is stored REVOKED, not run. */
  taskRevoked: TaskSignalInfo & { readonly reason: "expired" };
  /** Celery's `worker_ready`: connected and consuming. */
  workerReady: { readonly hostname: string; readonly queues: readonly string[] };
  /** Celery's `worker_shutdown`: stopped; running tasks are done or requeued. */
  workerShutdown: { readonly hostname: string };
}

export type SignalName = keyof SignalPayloads;

/** A listener: may be async; the sender awaits it (errors are logged, never thrown on). */
export type SignalListener<N extends SignalName> = (payload: SignalPayloads[N]) => unknown;

/** A set of signals with their listeners. `signals` is the process-wide one. */
export interface Signals {
  /** Adds a listener; returns a function that removes it. */
  connect<N extends SignalName>(name: N, listener: SignalListener<N>): () => void;
  /** Removes a listener (the one given to `connect`). */
  disconnect<N extends SignalName>(name: N, listener: SignalListener<N>): void;
  /** True when the signal has at least one listener (senders skip building payloads otherwise). */
  has(name: SignalName): boolean;
  /**
   * For senders: calls every listener in the order connected, awaiting each; returns the errors
   * they threw (the sender logs them). A listener's error never stops the others.
   */
  send<N extends SignalName>(name: N, payload: SignalPayloads[N]): Promise<unknown[]>;
}

/** A new, empty set of signals: for a test, or an app that wants its own. */
export function createSignals(): Signals {
  const listeners = new Map<SignalName, Set<SignalListener<never>>>();
  const disconnect: Signals["disconnect"] = (name, listener) => {
    listeners.get(name)?.delete(listener as SignalListener<never>);
  };
  return {
    connect(name, listener) {
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      set.add(listener as SignalListener<never>);
      return () => disconnect(name, listener);
    },
    disconnect,
    has(name) {
      return (listeners.get(name)?.size ?? 0) > 0;
    },
    async send(name, payload) {
      const errors: unknown[] = [];
      for (const listener of [...(listeners.get(name) ?? [])]) {
        try {
          await (listener as SignalListener<typeof name>)(payload);
        } catch (error) {
          errors.push(error);
        }
      }
      return errors;
    },
  };
}

const GLOBAL_KEY = Symbol.for("celery-ts.signals");

/**
 * The process-wide signals, as Celery's module-level ones: every client and worker sends to them
 * unless given their own `signals`. Shared across duplicate installs of this package.
 *
 * @example signals.connect("taskFailure", ({ task, id, error }) => report(task, id, error))
 */
export const signals: Signals = ((globalThis as Record<symbol, unknown>)[GLOBAL_KEY] ??=
  createSignals()) as Signals;
