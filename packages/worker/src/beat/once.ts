import { randomUUID } from "node:crypto";
import { isCeleryTsError, resolveStore, type CoordinationStore } from "@celery-ts/core";
import { settle } from "../pipeline/settle.ts";
import type { Job, WorkerState } from "../setup/state.ts";

/**
 * The header a beat sending in two steps (a broker that is not its store's server) puts on each
 * tick's message: a celery-ts worker with a coordination store claims `key` (set-if-absent, for
 * `ttl` seconds) before running it, so the copy a new leader sends again after its predecessor
 * died between publishing and recording runs once. Python Celery ignores headers it does not
 * know, and runs every copy.
 */
export const ONCE_HEADER = "celery_ts_once";

/** What the header carries. */
export interface OnceClaim {
  /** What is claimed: the tick's task id (the same in every copy of the tick). */
  key: string;
  /** How long the claim is kept (seconds): a copy arriving later than this runs again. */
  ttl: number;
  /** This copy (each publish has its own): a copy finding its own claim is the same message again. */
  copy: string;
}

/** How long a claim is kept: an hour, plus the entry's expires (a copy may wait that long). */
export const ONCE_TTL_S = 3600;

/** The header for one publish of a tick. */
export function onceHeader(id: string, expiresS: number | undefined): Record<string, OnceClaim> {
  return { [ONCE_HEADER]: { key: id, ttl: ONCE_TTL_S + (expiresS ?? 0), copy: randomUUID() } };
}

function claimOf(headers: Record<string, unknown>): OnceClaim | undefined {
  const value = headers[ONCE_HEADER] as Partial<OnceClaim> | undefined;
  if (typeof value !== "object" || value === null) return undefined;
  const { key, ttl, copy } = value;
  if (typeof key !== "string" || !key || typeof copy !== "string") return undefined;
  if (typeof ttl !== "number" || !(ttl > 0)) return undefined;
  return { key, ttl, copy };
}

/** A worker's claim bookkeeping: its store (opened on the first claim) and what it warned. */
interface OnceState {
  opening?: Promise<CoordinationStore | undefined>;
  /** No store can be had (the broker keeps none and no store was given): warned once. */
  none?: boolean;
}

const states = new WeakMap<WorkerState, OnceState>();

/** The worker's coordination store: its own, or opened now from `store` or the broker's URL. */
async function storeOf(
  state: WorkerState,
  once: OnceState,
): Promise<CoordinationStore | undefined> {
  if (state.coordination) return state.coordination;
  if (once.none) return undefined;
  const { options, log } = state;
  const spec = options.store ?? (typeof options.broker === "string" ? options.broker : undefined);
  const warnNone = (reason: string): undefined => {
    once.none = true;
    log.warn(
      "beat ticks on this broker may run twice: this worker has no coordination store to claim " +
        "them in; give it one (the store option, --store or CELERY_TS_STORE_URL: the beat's " +
        "redis://, sqlite:/// or postgres:// URL)",
      { reason },
    );
    return undefined;
  };
  if (spec === undefined) return warnNone("the broker is an object and no store was given");
  once.opening ??= (async () => {
    let store: CoordinationStore;
    try {
      store = await resolveStore(spec, { logger: log });
    } catch (error) {
      if (isCeleryTsError(error, "CONFIG")) return warnNone(error.message);
      throw error;
    }
    try {
      await store.connect();
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
    // Opened while the worker stops: stop() has closed (or is closing) what it knew of.
    if (state.closing) {
      await store.close();
      return undefined;
    }
    // Closed with the worker's other connections (stop), unless the caller passed it.
    if (state.coordination && store !== state.coordination) await store.close();
    state.coordination ??= store;
    return state.coordination;
  })().catch((error: unknown) => {
    delete once.opening; // try again on the next tick
    throw error;
  });
  return once.opening;
}

/** Takes the claim; false when another copy holds it. */
async function take(store: CoordinationStore, claim: OnceClaim): Promise<boolean> {
  const key = `once:${claim.key}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await store.setIfAbsent(key, claim.copy, { ttl: claim.ttl })) return true;
    const holder = await store.get(key);
    // Our own claim: this copy again (redelivered after a worker died, requeued, or retried).
    if (holder === claim.copy) return true;
    if (holder !== undefined) return false;
    // Expired between the two reads: try once more.
  }
  return true;
}

/**
 * For a message sent with the `celery_ts_once` header: claims its key before it runs. Returns
 * false when another copy has the claim: this one was acknowledged without running, and nothing
 * about it is stored (the first copy's result stands). Without a store, or when the store fails,
 * the message runs (at least once, never lost).
 */
export async function claimOnce(
  state: WorkerState,
  job: Job,
  fields: Record<string, unknown>,
): Promise<boolean> {
  const claim = claimOf(job.message.headers);
  if (!claim) return true;
  let once = states.get(state);
  if (!once) states.set(state, (once = {}));
  try {
    const store = await storeOf(state, once);
    if (!store || (await take(store, claim))) return true;
  } catch (error) {
    state.log.warn("could not claim a beat tick in the coordination store; running it anyway", {
      ...fields,
      error: String((error as Error)?.message ?? error),
    });
    return true;
  }
  state.log.info("beat tick already claimed by another copy; acknowledged without running", {
    ...fields,
    claim: claim.key,
  });
  await settle(state, job.delivery, "ack");
  return false;
}
