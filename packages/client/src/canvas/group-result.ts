import {
  TaskState,
  fromResultTuple,
  isReadyState,
  toResultTuple,
  type ResultBackend,
  type ResultNode,
} from "@celery-ts/core";
import { createAsyncResult, type AsyncResult, type GetOptions } from "../async-result.ts";
import type { Control, RevokeOptions } from "../control.ts";
import { clientError } from "../internal/errors.ts";

/** A task's or a group's result. */
export type AnyResult = AsyncResult<unknown> | GroupResult<readonly unknown[]>;

/**
 * The results of a group, in the group's order: Celery's `GroupResult`. `Out` is the tuple (or
 * array) of the members' result types.
 */
export interface GroupResult<Out extends readonly unknown[]> {
  /** The group id (each member's `group` header). */
  readonly id: string;
  readonly results: readonly AnyResult[];
  readonly parent: AnyResult | null;
  /**
   * Waits for every member and resolves with their results in order; rejects with the first
   * failure (in group order), or a `TIMEOUT` error once `timeout` seconds have passed overall.
   */
  get(options?: Omit<GetOptions, "propagate">): Promise<Out>;
  /** True once every member is ready. */
  ready(): Promise<boolean>;
  /** True once every member succeeded. */
  successful(): Promise<boolean>;
  /** True when any member failed. */
  failed(): Promise<boolean>;
  /** How many members are ready. */
  completedCount(): Promise<number>;
  /**
   * Saves the group in the backend (Celery's `GroupResult.save()`; on Redis the key
   * `celery-taskset-meta-<id>`), so `client.restoreGroup(id)`, or Python's
   * `GroupResult.restore(id)`, finds it later.
   */
  save(): Promise<void>;
  /** Deletes the saved group and every member's result. */
  forget(): Promise<void>;
  /** Celery's result tuple of the group, `[[id, parent], [members...]]`. */
  asTuple(): unknown;
  /**
   * Revokes every member (those of nested groups too) with one `revoke` command to every worker,
   * as Celery's `GroupResult.revoke()`: each is stored REVOKED and never runs; with `terminate`, a
   * running one is stopped.
   */
  revoke(options?: RevokeOptions): Promise<void>;
}

/** Where results read their state, and the control channel `revoke()` goes through. */
export interface ResultSource {
  backend: () => Promise<ResultBackend>;
  /** Absent for results of a client without a broker: `revoke()` then refuses. */
  control?: (() => Control) | undefined;
}

/** Each member's value in order, within one deadline for them all. */
async function getInOrder(
  results: readonly AnyResult[],
  options: { timeout?: number; signal?: AbortSignal },
): Promise<unknown[]> {
  const deadline = options.timeout === undefined ? undefined : Date.now() + options.timeout * 1000;
  const values: unknown[] = [];
  for (const result of results) {
    const timeout =
      deadline === undefined ? undefined : Math.max(0, (deadline - Date.now()) / 1000);
    const rest = {
      ...(options.signal && { signal: options.signal }),
      ...(timeout !== undefined && { timeout }),
    };
    values.push(await result.get(rest));
  }
  return values;
}

export function createGroupResult<Out extends readonly unknown[]>(
  id: string,
  results: readonly AnyResult[],
  source: ResultSource,
  parent: AnyResult | null = null,
): GroupResult<Out> {
  const { backend } = source;
  const leaves = (): AsyncResult<unknown>[] =>
    results.flatMap((r) => ("results" in r ? [] : [r as AsyncResult<unknown>]));
  const groupsOf = (): GroupResult<readonly unknown[]>[] =>
    results.filter((r): r is GroupResult<readonly unknown[]> => "results" in r);
  const states = async (): Promise<string[]> => {
    const own = await Promise.all(leaves().map((r) => r.status()));
    const nested = await Promise.all(
      groupsOf().map(async (g) => ((await g.ready()) ? TaskState.SUCCESS : TaskState.PENDING)),
    );
    return [...own, ...nested];
  };
  const node = (): ResultNode => fromResultTuple(toTuple());
  const toTuple = (): unknown =>
    toResultTuple({
      id,
      parent: parent ? fromResultTuple(parent.asTuple()) : null,
      members: results.map((r) => fromResultTuple(r.asTuple())),
    });
  const self: GroupResult<Out> = {
    id,
    results,
    parent,
    async get(options = {}) {
      return (await getInOrder(results, options)) as unknown as Out;
    },
    async ready() {
      return (await states()).every(isReadyState);
    },
    async successful() {
      const own = await Promise.all(leaves().map((r) => r.successful()));
      const nested = await Promise.all(groupsOf().map((g) => g.successful()));
      return [...own, ...nested].every(Boolean);
    },
    async failed() {
      const own = await Promise.all(leaves().map((r) => r.failed()));
      const nested = await Promise.all(groupsOf().map((g) => g.failed()));
      return [...own, ...nested].some(Boolean);
    },
    async completedCount() {
      return (await states()).filter(isReadyState).length;
    },
    async save() {
      const store = (await backend()).groups;
      if (!store) throw noGroups((await backend()).name);
      await store.saveGroup(id, toResultTuple(node()));
    },
    async forget() {
      const resolved = await backend();
      await resolved.groups?.forgetGroup(id);
      await Promise.all(results.map((r) => r.forget()));
    },
    asTuple: toTuple,
    async revoke(options = {}) {
      if (!source.control) {
        throw clientError("CONFIG", `cannot revoke the group ${id}: this result has no client`);
      }
      const ids = (r: AnyResult): string[] => ("results" in r ? r.results.flatMap(ids) : [r.id]);
      await source.control().revoke(results.flatMap(ids), options);
    },
  };
  return Object.freeze(self);
}

/** The result tree a canvas produced, as client results (parents and members linked). */
export function resultFromNode(node: ResultNode, source: ResultSource, name?: string): AnyResult {
  const parent = node.parent ? resultFromNode(node.parent, source) : null;
  if (node.members) {
    return createGroupResult(
      node.id,
      node.members.map((member) => resultFromNode(member, source)),
      source,
      parent,
    );
  }
  return createAsyncResult(node.id, name, source, parent);
}

export function resultFromTuple(tuple: unknown, source: ResultSource): AnyResult {
  return resultFromNode(fromResultTuple(tuple), source);
}

/** A group saved by `save()` (here or by Python's `GroupResult.save()`), or undefined. */
export async function restoreGroup<Out extends readonly unknown[]>(
  groupId: string,
  source: ResultSource,
): Promise<GroupResult<Out> | undefined> {
  const resolved = await source.backend();
  if (!resolved.groups) throw noGroups(resolved.name);
  const tuple = await resolved.groups.getGroup(groupId);
  if (tuple === undefined) return undefined;
  const restored = resultFromTuple(tuple, source);
  if (!("results" in restored)) {
    throw clientError("MALFORMED_MESSAGE", `the saved group ${groupId} holds a task, not a group`);
  }
  return restored as unknown as GroupResult<Out>;
}

function noGroups(backend: string): Error {
  return clientError(
    "CONFIG",
    `the ${backend} result backend cannot save groups; use a Redis, SQLite or memory backend`,
  );
}
