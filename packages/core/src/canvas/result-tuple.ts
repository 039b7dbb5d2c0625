import { CeleryTsError } from "../errors.ts";

/**
 * A result as Celery serializes it (`AsyncResult.as_tuple()`): `[[id, parent], null]` for a task,
 * `[[group id, parent], [member, ...]]` for a group. Stored in `children`, saved groups and
 * `celery.chord_unlock` messages.
 */
export type ResultTuple = [[string, ResultTuple | null], ResultTuple[] | null];

/** A task's or group's result, as a tree: what a canvas returns once it is sent. */
export interface ResultNode {
  readonly id: string;
  /** The result this one follows in a chain (or a chord body's header group). */
  parent: ResultNode | null;
  /** The members when this is a group; null for a task. */
  readonly members: readonly ResultNode[] | null;
}

export function taskNode(id: string, parent: ResultNode | null = null): ResultNode {
  return { id, parent, members: null };
}

export function groupNode(
  id: string,
  members: readonly ResultNode[],
  parent: ResultNode | null = null,
): ResultNode {
  return { id, parent, members };
}

export function toResultTuple(node: ResultNode): ResultTuple {
  return [
    [node.id, node.parent ? toResultTuple(node.parent) : null],
    node.members ? node.members.map(toResultTuple) : null,
  ];
}

/** Reads a result tuple written by Celery or celery-ts; throws a MALFORMED_MESSAGE error otherwise. */
export function fromResultTuple(value: unknown): ResultNode {
  if (!Array.isArray(value) || value.length !== 2) throw malformedTuple(value);
  const [head, nodes] = value as [unknown, unknown];
  // Celery accepts a bare id where it wrote `[id, parent]` long ago.
  const [id, parent] = Array.isArray(head) ? (head as [unknown, unknown]) : [head, null];
  if (typeof id !== "string") throw malformedTuple(value);
  const parentNode = parent === null || parent === undefined ? null : fromResultTuple(parent);
  if (nodes === null || nodes === undefined) return taskNode(id, parentNode);
  if (!Array.isArray(nodes)) throw malformedTuple(value);
  return groupNode(id, nodes.map(fromResultTuple), parentNode);
}

function malformedTuple(value: unknown): CeleryTsError {
  return new CeleryTsError(
    "MALFORMED_MESSAGE",
    `not a Celery result tuple ([[id, parent], children]): ${JSON.stringify(value)}`,
  );
}
