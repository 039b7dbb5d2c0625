import {
  CANVAS_TASK,
  CeleryTsError,
  asSignature,
  createSignature,
  currentTask,
  defineTask,
  fromResultTuple,
  isReadyState,
  toResultTuple,
  type AnyTaskDefinition,
  type ChordPart,
  type Logger,
  type ResultNode,
  type TaskDefinition,
} from "@celery-ts/core";
import { applyFromTask, type WorkerCanvasDeps } from "./canvas-sender.ts";
import { completeChord } from "./chord-join.ts";

/** Celery's `result_chord_retry_interval`: how often chord_unlock looks again. */
const CHORD_RETRY_INTERVAL = 1;

/**
 * Celery's built-in tasks that canvas messages name, so that a TypeScript worker runs them when
 * they reach its queue: `celery.chord_unlock` (the chord fallback of backends without a counter),
 * `celery.map`, `celery.starmap` and `celery.chunks`. A task the user registers under one of
 * these names wins.
 */
export function canvasBuiltins(deps: WorkerCanvasDeps & { log: Logger }): AnyTaskDefinition[] {
  // Parameters as Celery's own functions declare them, so Python's keyword calls bind.
  return [
    defineTask(
      CANVAS_TASK.chordUnlock,
      (
        groupId: unknown,
        callback: unknown,
        interval?: unknown,
        maxRetries?: unknown,
        result?: unknown,
      ): Promise<void> => chordUnlock(deps, groupId, callback, { interval, maxRetries, result }),
      {
        ignoreResult: true,
        params: ["group_id", "callback", "interval?", "max_retries?", "result?", "**kwargs"],
      },
    ),
    defineTask(
      CANVAS_TASK.xmap,
      (task: unknown, it: unknown): Promise<unknown[]> => mapTask(deps.registry, "map", task, it),
      { params: ["task", "it"] },
    ),
    defineTask(
      CANVAS_TASK.xstarmap,
      (task: unknown, it: unknown): Promise<unknown[]> =>
        mapTask(deps.registry, "starmap", task, it),
      { params: ["task", "it"] },
    ),
    defineTask(
      CANVAS_TASK.chunks,
      async (task: unknown, it: unknown, n: unknown): Promise<unknown> => {
        const { id, rootId } = currentTask();
        const sig = createSignature(
          CANVAS_TASK.chunks,
          [],
          { task, it, n },
          {},
          {
            subtaskType: "chunks",
            immutable: true,
          },
        );
        return toResultTuple(await applyFromTask(deps, { id, rootId }, sig, {})) as unknown;
      },
      { params: ["task", "it", "n"] },
    ),
  ] as AnyTaskDefinition[];
}

async function chordUnlock(
  deps: WorkerCanvasDeps & { log: Logger },
  groupId: unknown,
  callback: unknown,
  kwargs: { interval: unknown; maxRetries: unknown; result: unknown },
): Promise<void> {
  const context = currentTask();
  if (typeof groupId !== "string") throw badCall("chord_unlock", "a group id as first argument");
  const body = asSignature(callback, "chord_unlock's callback");
  if (!Array.isArray(kwargs.result)) throw badCall("chord_unlock", "result=[member tuples]");
  const members = kwargs.result.map(fromResultTuple);
  const backend = deps.backend();
  if (!backend) {
    throw new CeleryTsError(
      "NO_RESULT_BACKEND",
      "celery.chord_unlock needs the result backend the chord's sender uses; give it to the worker",
      { pkg: "worker" },
    );
  }
  const ids = members.flatMap(leafIds);
  const metas = await Promise.all(ids.map((id) => backend.get(id)));
  if (!metas.every((meta) => meta && isReadyState(meta.status))) {
    const interval = typeof kwargs.interval === "number" ? kwargs.interval : CHORD_RETRY_INTERVAL;
    const maxRetries =
      typeof kwargs.maxRetries === "number" ? kwargs.maxRetries : Number.POSITIVE_INFINITY;
    context.retry({ countdown: interval, maxRetries });
  }
  const parts: ChordPart[] = ids.map((taskId, i) => ({
    taskId,
    status: metas[i]!.status,
    result: metas[i]!.result,
    groupIndex: i,
  }));
  await completeChord(deps, { id: context.id, rootId: context.rootId }, groupId, body, parts);
}

function leafIds(node: ResultNode): string[] {
  return node.members ? node.members.flatMap(leafIds) : [node.id];
}

/** Celery's `celery.map` / `celery.starmap`: runs the named task here, once per item. */
async function mapTask(
  registry: ReadonlyMap<string, TaskDefinition>,
  kind: "map" | "starmap",
  task: unknown,
  it: unknown,
): Promise<unknown[]> {
  const sig = asSignature(task, `celery.${kind}'s task`);
  const items = it;
  if (!Array.isArray(items)) throw badCall(kind, "it=[items]");
  const definition = registry.get(sig.task);
  if (!definition) {
    const error = new Error(
      `task ${sig.task} is not registered on this worker (celery.${kind} runs it here)`,
    );
    error.name = "NotRegistered";
    throw error;
  }
  const results: unknown[] = [];
  for (const item of items) {
    if (kind === "starmap" && !Array.isArray(item)) throw badCall(kind, "it=[[args], ...]");
    results.push(await definition.run(...(kind === "starmap" ? (item as unknown[]) : [item])));
  }
  return results;
}

function badCall(task: string, expected: string): CeleryTsError {
  return new CeleryTsError("MALFORMED_MESSAGE", `celery.${task} was called without ${expected}`, {
    pkg: "worker",
  });
}
