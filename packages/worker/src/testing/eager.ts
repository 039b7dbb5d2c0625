import { CeleryTsError, isCeleryTsError, type ResultBackend, type Signals } from "@celery-ts/core";
import type { AnyResult, AsyncResult } from "@celery-ts/client";

const FINAL = new Set(["SUCCESS", "FAILURE", "IGNORED", "REJECTED"]);

/** How the test client makes a send resolve once its task has run (Celery's `task_always_eager`). */
export interface EagerWaits {
  /** The user's signals, through which the test client also learns when a task is done. */
  readonly signals: Signals;
  /** A send due now was published: an eager send of it waits for its task. */
  sent(id: string): void;
  /** Resolves the send once its task has finished (at once unless eager and due now). */
  settle<R>(sending: Promise<AsyncResult<R>>): Promise<AsyncResult<R>>;
  /**
   * An eager canvas send: resolves once the result it returned is ready: a chain's last step, a
   * chord's body, each member of a group. A failed step marks the steps after it failed, so a
   * failure ends the wait too.
   */
  settleCanvas<R extends AnyResult | readonly AnyResult[]>(sending: Promise<R>): Promise<R>;
}

export interface EagerOptions {
  eager: boolean;
  /** Seconds a send waits for its task before it rejects with a TIMEOUT error. */
  timeout: number;
  backend: ResultBackend;
  userSignals: Signals;
}

export function createEagerWaits(options: EagerOptions): EagerWaits {
  const { eager, timeout, backend } = options;
  const finished = new Map<string, () => void>();
  // Each send that is due now, until its task has finished (then it removes itself).
  const waiting = new Map<string, Promise<void>>();
  const timeoutError = (what: string): CeleryTsError =>
    new CeleryTsError(
      "TIMEOUT",
      `${what} did not finish within ${timeout} s in the test worker; raise eagerTimeout, ` +
        "or pass eager: false and await get()",
      { pkg: "worker" },
    );
  return {
    signals: finishSignals(options.userSignals, (id) => finished.get(id)?.()),
    sent(id) {
      if (!eager) return;
      const done = new Promise<void>((resolve) =>
        finished.set(id, () => {
          finished.delete(id);
          waiting.delete(id);
          resolve();
        }),
      );
      waiting.set(id, done);
    },
    async settle(sending) {
      const result = await sending;
      const done = waiting.get(result.id);
      if (!done) return result;
      if (!(await raceTimeout(done, timeout)) && !(await result.ready())) {
        throw timeoutError(`task ${result.name ?? ""}[${result.id}]`);
      }
      return result;
    },
    async settleCanvas(sending) {
      const results = await sending;
      if (!eager) return results;
      const ids = leafIds(results as AnyResult | readonly AnyResult[]);
      const abort = new AbortController();
      try {
        await Promise.all(ids.map((id) => backend.waitFor(id, { timeout, signal: abort.signal })));
      } catch (error) {
        throw isCeleryTsError(error, "TIMEOUT")
          ? timeoutError(`the canvas [${ids.join(", ")}]`)
          : error;
      } finally {
        abort.abort();
      }
      return results;
    },
  };
}

/** The user's listeners still hear everything; `onFinished` also hears each task that is done. */
function finishSignals(userSignals: Signals, onFinished: (id: string) => void): Signals {
  return {
    connect: (name, listener) => userSignals.connect(name, listener),
    disconnect: (name, listener) => userSignals.disconnect(name, listener),
    has: (name) => name === "taskPostrun" || name === "taskRevoked" || userSignals.has(name),
    async send(name, payload) {
      const errors = await userSignals.send(name, payload);
      if (name === "taskPostrun" || name === "taskRevoked") {
        const { id, state } = payload as { id: string; state?: string };
        if (state === undefined || FINAL.has(state)) onFinished(id);
      }
      return errors;
    },
  };
}

/** True when `done` settles within `seconds`, false when the time runs out first. */
async function raceTimeout(done: Promise<void>, seconds: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(resolve, seconds * 1000, "timeout");
  });
  try {
    return (await Promise.race([done, timeout])) !== "timeout";
  } finally {
    clearTimeout(timer);
  }
}

/** The ids whose results make `results` ready: each task's own, and each group member's. */
function leafIds(results: AnyResult | readonly AnyResult[]): string[] {
  if (Array.isArray(results)) return (results as readonly AnyResult[]).flatMap(leafIds);
  const result = results as AnyResult;
  return "results" in result ? result.results.flatMap(leafIds) : [result.id];
}
