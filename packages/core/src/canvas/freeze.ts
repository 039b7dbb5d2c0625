import { randomUUID } from "node:crypto";
import type { Signature } from "../task-message.ts";
import { groupNode, taskNode, type ResultNode } from "./result-tuple.ts";
import { asSignature, createSignature, CANVAS_TASK, groupTasks, isRecord } from "./signature.ts";

/** Ids and chord membership a signature takes when it is frozen (Celery's `freeze()`). */
export interface FreezeOptions {
  taskId?: string | undefined;
  groupId?: string | undefined;
  groupIndex?: number | undefined;
  /** The chord body this signature is a header part of. */
  chord?: Signature | undefined;
  rootId?: string | undefined;
}

/**
 * Gives a signature (mutated in place: pass a clone) the ids of its results, without sending
 * anything, and returns its result tree. Ids already set are kept, so freezing twice, or freezing
 * on one side and applying on the other, names the same results.
 */
export function freeze(sig: Signature, f: FreezeOptions = {}): ResultNode {
  switch (sig.subtask_type) {
    case "chain":
      return freezeChain(sig, f).nodes[0]!;
    case "group": {
      const o = sig.options;
      const gid = (o.task_id as string | undefined) ?? f.groupId ?? f.taskId ?? randomUUID();
      o.task_id = gid;
      if (f.rootId) o.root_id = f.rootId;
      const members = unrollGroup(sig);
      sig.kwargs.tasks = members;
      const nodes = members.map((member, i) =>
        freeze(member, { groupId: gid, groupIndex: i, chord: f.chord, rootId: f.rootId }),
      );
      return groupNode(gid, nodes);
    }
    case "chord": {
      const header = chordHeader(sig);
      const body = asSignature(sig.kwargs.body, "a chord's body");
      sig.kwargs.header = header;
      sig.kwargs.body = body;
      const headerNode = freeze(header, { rootId: f.rootId, chord: body });
      const bodyNode = freeze(body, { ...f, chord: f.chord });
      rootOf(bodyNode).parent = headerNode;
      return bodyNode;
    }
    default: {
      const o = sig.options;
      const id = (o.task_id as string | undefined) ?? f.taskId ?? randomUUID();
      o.task_id = id;
      if (f.rootId) o.root_id = f.rootId;
      if (f.groupId && o.group_id === undefined) o.group_id = f.groupId;
      if (f.chord) o.chord = f.chord;
      if (f.groupIndex !== undefined) o.group_index = f.groupIndex;
      return taskNode(id);
    }
  }
}

/** The first result of a result chain: where a chain's or chord's earlier steps hang. */
export function rootOf(node: ResultNode): ResultNode {
  let current = node;
  while (current.parent) current = current.parent;
  return current;
}

export interface FrozenChain {
  /** The steps, last step first (the order of a message's `chain`). */
  steps: Signature[];
  /** Their results, in the same order. */
  nodes: ResultNode[];
}

/**
 * Celery's `prepare_steps`: nested chains are spliced in, a group followed by a step becomes a
 * chord with that step as its body, every step gets its id, the last one takes the chain's own
 * id, group and chord membership, and each result's parent is the step before.
 */
export function freezeChain(
  sig: Signature,
  f: FreezeOptions = {},
  errbacks: Signature[] = [],
): FrozenChain {
  const flat = flattenChain(sig);
  const steps: Signature[] = [];
  const nodes: ResultNode[] = [];
  for (let i = flat.length - 1; i >= 0; i--) {
    let step = flat[i]!;
    if (step.subtask_type === "group" && steps.length > 0) {
      const body = steps.pop()!;
      nodes.pop();
      step = createSignature(
        CANVAS_TASK.chord,
        [],
        { header: step, body, kwargs: {} },
        {},
        {
          subtaskType: "chord",
        },
      );
    }
    const last = steps.length === 0;
    const node = freeze(step, last ? f : { rootId: f.rootId });
    for (const errback of errbacks) addToListOption(step, "link_error", errback);
    const later = nodes.at(-1);
    if (later) rootOf(later).parent = node;
    steps.push(step);
    nodes.push(node);
  }
  return { steps, nodes };
}

/** Adds a signature to `link` or `link_error`; on a chord, to its body, as Celery does. */
export function addToListOption(sig: Signature, key: "link" | "link_error", item: Signature): void {
  if (sig.subtask_type === "chord") {
    addToListOption(asSignature(sig.kwargs.body, "a chord's body"), key, item);
    return;
  }
  if (sig.subtask_type === "group") {
    for (const member of groupTasks(sig)) addToListOption(member, key, item);
    return;
  }
  const current = sig.options[key];
  const list =
    current === undefined || current === null ? [] : Array.isArray(current) ? current : [current];
  sig.options[key] = [...list, item];
}

function flattenChain(sig: Signature): Signature[] {
  const tasks = sig.kwargs.tasks;
  if (!Array.isArray(tasks)) return [];
  return tasks.flatMap((task, i) => {
    const step = asSignature(task, `chain step ${i}`);
    return step.subtask_type === "chain" ? flattenChain(step) : [step];
  });
}

/** A group's members with nested groups spliced in, as Celery runs them. */
export function unrollGroup(sig: Signature): Signature[] {
  return groupTasks(sig).flatMap((member) =>
    member.subtask_type === "group" ? unrollGroup(member) : [member],
  );
}

/** A chord's header as a group signature (Celery accepts a list too). */
export function chordHeader(sig: Signature): Signature {
  const header = sig.kwargs.header;
  if (Array.isArray(header)) {
    return createSignature(CANVAS_TASK.group, [], { tasks: header }, {}, { subtaskType: "group" });
  }
  if (isRecord(header) && header.subtask_type !== "group") {
    const one = asSignature(header, "a chord's header");
    return createSignature(CANVAS_TASK.group, [], { tasks: [one] }, {}, { subtaskType: "group" });
  }
  return asSignature(header, "a chord's header");
}

/** How many finished parts complete a chord with this header (Celery's `_chord._descend`). */
export function chordSize(sig: Signature): number {
  switch (sig.subtask_type) {
    case "group":
      return groupTasks(sig).reduce((sum, member) => sum + chordSize(member), 0);
    case "chain": {
      const steps = flattenChain(sig);
      for (let i = steps.length - 1; i >= 0; i--) {
        const size = chordSize(steps[i]!);
        if (size > 0) return size;
      }
      return 0;
    }
    case "chord":
      return chordSize(asSignature(sig.kwargs.body, "a chord's body"));
    default:
      return 1;
  }
}
