import type { ResultTuple } from "./result-tuple.ts";

/** One finished member of a chord's header, as a worker reports it. */
export interface ChordPart {
  taskId: string;
  /** SUCCESS, or the failure state (FAILURE, REVOKED) the member ended in. */
  status: string;
  /** The return value, or the stored exception info (`exc_type`, `exc_message`, `exc_module`). */
  result: unknown;
  /** The member's `group_index` header: the order of the body's results. */
  groupIndex: number | null;
}

/** What recording a part found: the chord is still waiting, or this part completed it. */
export type ChordProgress =
  | { complete: false }
  /** Exactly one caller sees this: the parts, in header order. */
  | { complete: true; parts: ChordPart[] };

/**
 * A result backend's native chord counter. With one, the worker that finishes a chord's last
 * header task sends the body at once; without one, the sender falls back to Celery's
 * `celery.chord_unlock` task, which polls the members' results.
 */
export interface ChordCounter {
  /**
   * Declares how many parts complete the chord, before any is sent (Celery's `set_chord_size`;
   * on Redis the `<group key>.s` key Python workers read too).
   */
  setSize(groupId: string, size: number): Promise<void>;
  /** Records one finished part and tells whether it was the last one. Idempotent per task id. */
  partReturn(groupId: string, part: ChordPart): Promise<ChordProgress>;
  /** Deletes the chord's bookkeeping once the body is sent (or failed). */
  clear(groupId: string): Promise<void>;
}

/**
 * Saved groups (Celery's `GroupResult.save()` / `GroupResult.restore()`): on Redis the key
 * `celery-taskset-meta-<group id>` holding `{"result": <result tuple>}`, readable by Python.
 */
export interface GroupStore {
  saveGroup(groupId: string, tuple: ResultTuple): Promise<void>;
  /** The saved tuple, or undefined when the group was never saved, expired or was forgotten. */
  getGroup(groupId: string): Promise<ResultTuple | undefined>;
  forgetGroup(groupId: string): Promise<void>;
}
