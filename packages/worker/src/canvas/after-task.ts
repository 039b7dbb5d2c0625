import {
  CANVAS_TASK,
  TaskState,
  asSignature,
  celeryNow,
  createSignature,
  toResultTuple,
  type ExceptionInfo,
  type Logger,
  type ResultNode,
  type ResultTuple,
  type Signature,
  type TaskMessage,
} from "@celery-ts/core";
import { applyFromTask, originOf, type WorkerCanvasDeps } from "./canvas-sender.ts";
import { completeChord, sendErrbacks } from "./chord-join.ts";

/** Where a finished task stands in a chord: its group, its index, the chord's body. */
interface ChordMembership {
  taskId: string;
  groupId: string | null;
  groupIndex: number | null;
  body: Signature | null;
}

/**
 * What a worker does for the canvas around a task, as Celery's tracer and backend do: after a
 * success, the `link` callbacks and the chain's next step get the result; after a failure, the
 * rest of the chain is marked FAILURE and the `link_error` errbacks are sent; either way a chord
 * header part is counted and the last one sends the body.
 */
export interface CanvasHooks {
  /**
   * Before the result is stored (so it lists them): sends callbacks and the next chain step.
   * Undefined when the message has none (no children): nothing to wait for.
   */
  afterSuccess(message: TaskMessage, value: unknown): Promise<ResultTuple[]> | undefined;
  /** After the success is stored: counts the chord part. Undefined when in no chord. */
  afterStored(message: TaskMessage, value: unknown): Promise<void> | undefined;
  /** After the failure is stored: chord part, the chain's later steps, errbacks. */
  afterFailure(
    message: TaskMessage,
    info: ExceptionInfo,
    traceback: string | null,
    storeResults: boolean,
  ): Promise<void>;
}

type HookDeps = WorkerCanvasDeps & { log: Logger };

export function createCanvasHooks(deps: HookDeps): CanvasHooks {
  return {
    // Most tasks have no canvas around them: no async call, nothing to await, for those.
    afterSuccess: (message, value) =>
      hasSuccessors(message) ? sendSuccessors(deps, message, value) : undefined,
    afterStored(message, value) {
      const member = membershipOf(message);
      if (!inChord(member)) return undefined;
      return countChordPart(deps, message, member, TaskState.SUCCESS, value);
    },
    async afterFailure(message, info, traceback, storeResults) {
      await countChordPart(deps, message, membershipOf(message), TaskState.FAILURE, info);
      await failRestOfChain(deps, message, info, traceback, storeResults);
      await sendErrbacks(deps, originOf(message), message.embed.errbacks, message.headers.id);
    },
  };
}

function hasSuccessors({ embed }: TaskMessage): boolean {
  return (embed.callbacks?.length ?? 0) > 0 || (embed.chain?.length ?? 0) > 0;
}

/** Counts a finished chord header part; the last one sends the chord's body. */
async function countChordPart(
  deps: HookDeps,
  from: TaskMessage,
  member: ChordMembership,
  status: string,
  result: unknown,
): Promise<void> {
  if (!inChord(member)) return;
  const { groupId, body } = member;
  const backend = deps.backend();
  if (!backend) {
    deps.log.error(
      "a chord part finished, but this worker has no result backend to count it: " +
        "the chord's body will never run; give the worker the backend the sender uses",
      {
        id: member.taskId,
        group: groupId,
      },
    );
    return;
  }
  // Without a native counter the sender started celery.chord_unlock, which polls instead.
  if (!backend.chords) return;
  const progress = await backend.chords.partReturn(groupId, {
    taskId: member.taskId,
    status,
    result,
    groupIndex: member.groupIndex,
  });
  if (!progress.complete) return;
  try {
    await completeChord(deps, originOf(from), groupId, body, progress.parts);
  } finally {
    await backend.chords.clear(groupId);
  }
}

/** After a success: sends the `link` callbacks and the chain's next step, with the result. */
async function sendSuccessors(
  deps: HookDeps,
  message: TaskMessage,
  value: unknown,
): Promise<ResultTuple[]> {
  const children: ResultNode[] = [];
  const callbacks = message.embed.callbacks ?? [];
  if (callbacks.length === 1) {
    children.push(await applyFromTask(deps, originOf(message), callbacks[0]!, { args: [value] }));
  } else if (callbacks.length > 1) {
    // Celery sends several callbacks as one group (groups among them each on their own).
    const groups = callbacks.filter((sig) => sig.subtask_type === "group");
    const others = callbacks.filter((sig) => sig.subtask_type !== "group");
    if (others.length > 0) {
      groups.push(
        createSignature(CANVAS_TASK.group, [], { tasks: others }, {}, { subtaskType: "group" }),
      );
    }
    for (const group of groups) {
      children.push(await applyFromTask(deps, originOf(message), group, { args: [value] }));
    }
  }
  const chain = message.embed.chain;
  if (chain && chain.length > 0) {
    const rest = [...chain];
    const next = rest.pop()!;
    children.push(
      await applyFromTask(deps, originOf(message), next, {
        args: [value],
        options: { chain: rest },
      }),
    );
  }
  return children.map(toResultTuple);
}

/**
 * After a failure, the chain's later steps will never run: each is stored FAILURE (so a wait on
 * the chain ends) and counted as a failed part of the chord it belongs to.
 */
async function failRestOfChain(
  deps: HookDeps,
  message: TaskMessage,
  info: ExceptionInfo,
  traceback: string | null,
  storeResults: boolean,
): Promise<void> {
  const backend = deps.backend();
  for (const [i, raw] of (message.embed.chain ?? []).entries()) {
    const step = asSignature(raw, `chain step ${i}`);
    const id = typeof step.options.task_id === "string" ? step.options.task_id : null;
    if (storeResults && id && backend) {
      await backend.store(id, {
        status: TaskState.FAILURE,
        result: info,
        traceback,
        children: [],
        date_done: celeryNow(),
        task_id: id,
      });
    }
    if (id && step.options.chord) {
      await countChordPart(deps, message, membershipOfStep(id, step), TaskState.FAILURE, info);
    }
  }
}

/** A part of a chord's header: its end is counted, and the last part sends the body. */
function inChord(member: ChordMembership): member is ChordMembership & {
  groupId: string;
  body: Signature;
} {
  return Boolean(member.groupId) && Boolean(member.body);
}

function membershipOf(message: TaskMessage): ChordMembership {
  return {
    taskId: message.headers.id,
    groupId: message.headers.group,
    groupIndex: message.headers.group_index,
    body: message.embed.chord,
  };
}

function membershipOfStep(id: string, step: Signature): ChordMembership {
  const { group_id: groupId, group_index: groupIndex, chord } = step.options;
  return {
    taskId: id,
    groupId: typeof groupId === "string" ? groupId : null,
    groupIndex: typeof groupIndex === "number" ? groupIndex : null,
    body: chord ? asSignature(chord, "a chain step's chord") : null,
  };
}
