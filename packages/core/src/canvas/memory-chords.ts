import type { ChordCounter, ChordPart, ChordProgress, GroupStore } from "./chord-counter.ts";
import type { ResultTuple } from "./result-tuple.ts";

interface Chord {
  size: number | undefined;
  /** By task id: a part reported twice (a redelivered task) counts once. */
  parts: Map<string, ChordPart>;
  completed: boolean;
}

/** A chord counter and group store in this process's memory: the memory backend's. */
export function createChordCounterInMemory(): { chords: ChordCounter; groups: GroupStore } {
  const chords = new Map<string, Chord>();
  const groups = new Map<string, string>();
  const chordOf = (groupId: string): Chord => {
    let chord = chords.get(groupId);
    if (!chord) {
      chord = { size: undefined, parts: new Map(), completed: false };
      chords.set(groupId, chord);
    }
    return chord;
  };
  return {
    chords: {
      async setSize(groupId, size) {
        chordOf(groupId).size = size;
      },
      async partReturn(groupId, part): Promise<ChordProgress> {
        const chord = chordOf(groupId);
        chord.parts.set(part.taskId, structuredClone(part));
        if (chord.completed || chord.size === undefined || chord.parts.size < chord.size) {
          return { complete: false };
        }
        chord.completed = true;
        return { complete: true, parts: orderParts([...chord.parts.values()]) };
      },
      async clear(groupId) {
        chords.delete(groupId);
      },
    },
    groups: {
      async saveGroup(groupId, tuple) {
        groups.set(groupId, JSON.stringify(tuple));
      },
      async getGroup(groupId) {
        const saved = groups.get(groupId);
        return saved === undefined ? undefined : (JSON.parse(saved) as ResultTuple);
      },
      async forgetGroup(groupId) {
        groups.delete(groupId);
      },
    },
  };
}

/** Header order (`group_index`), as Celery's Redis sorted set orders them; unindexed parts last. */
export function orderParts(parts: ChordPart[]): ChordPart[] {
  return parts.sort(
    (a, b) =>
      (a.groupIndex ?? Number.POSITIVE_INFINITY) - (b.groupIndex ?? Number.POSITIVE_INFINITY),
  );
}
