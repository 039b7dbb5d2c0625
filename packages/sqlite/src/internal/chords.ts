import {
  decodeJson,
  encodeJson,
  type ChordCounter,
  type ChordPart,
  type ChordProgress,
  type GroupStore,
  type ResultTuple,
} from "@celery-ts/core";
import type Database from "better-sqlite3";
import { createConnection, type Connection } from "./connection.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS celery_ts_chords (
  group_id TEXT PRIMARY KEY,
  size INTEGER,
  completed INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS celery_ts_chord_parts (
  group_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  part TEXT NOT NULL,
  group_index REAL,
  PRIMARY KEY (group_id, task_id)
);
CREATE TABLE IF NOT EXISTS celery_ts_groups (
  group_id TEXT PRIMARY KEY,
  tuple TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
`;

interface PartRow {
  part: string;
}

function prepare(db: Database.Database) {
  const upsertChord = db.prepare<[string, number | null, number]>(
    `INSERT INTO celery_ts_chords (group_id, size, expires_at) VALUES (?, ?, ?)
     ON CONFLICT (group_id) DO UPDATE SET size = COALESCE(excluded.size, size),
       expires_at = excluded.expires_at`,
  );
  const addPart = db.prepare<[string, string, string, number | null]>(
    `INSERT INTO celery_ts_chord_parts (group_id, task_id, part, group_index) VALUES (?, ?, ?, ?)
     ON CONFLICT (group_id, task_id) DO UPDATE SET part = excluded.part`,
  );
  const count = db.prepare<[string], { n: number }>(
    "SELECT COUNT(*) AS n FROM celery_ts_chord_parts WHERE group_id = ?",
  );
  const chord = db.prepare<[string], { size: number | null; completed: number }>(
    "SELECT size, completed FROM celery_ts_chords WHERE group_id = ?",
  );
  const complete = db.prepare<[string]>(
    "UPDATE celery_ts_chords SET completed = 1 WHERE group_id = ?",
  );
  const parts = db.prepare<[string], PartRow>(
    `SELECT part FROM celery_ts_chord_parts WHERE group_id = ?
     ORDER BY group_index IS NULL, group_index, rowid`,
  );
  const deleteChord = db.prepare<[string]>("DELETE FROM celery_ts_chords WHERE group_id = ?");
  const deleteParts = db.prepare<[string]>("DELETE FROM celery_ts_chord_parts WHERE group_id = ?");
  // IMMEDIATE: the count and the completed flag are read and written under one write lock, so
  // exactly one process sees the chord complete.
  const partReturn = db
    .transaction((groupId: string, part: ChordPart, expiresAt: number): ChordProgress => {
      upsertChord.run(groupId, null, expiresAt);
      addPart.run(groupId, part.taskId, encodeJson(part), part.groupIndex);
      const state = chord.get(groupId)!;
      if (state.completed || state.size === null || count.get(groupId)!.n < state.size) {
        return { complete: false };
      }
      complete.run(groupId);
      return {
        complete: true,
        parts: parts.all(groupId).map((row) => decodeJson(row.part) as ChordPart),
      };
    })
    .immediate.bind(null);
  return {
    upsertChord,
    partReturn,
    clear: db.transaction((groupId: string) => {
      deleteChord.run(groupId);
      deleteParts.run(groupId);
    }),
    saveGroup: db.prepare<[string, string, number]>(
      `INSERT INTO celery_ts_groups (group_id, tuple, expires_at) VALUES (?, ?, ?)
       ON CONFLICT (group_id) DO UPDATE SET tuple = excluded.tuple, expires_at = excluded.expires_at`,
    ),
    getGroup: db.prepare<[string, number], { tuple: string }>(
      "SELECT tuple FROM celery_ts_groups WHERE group_id = ? AND expires_at > ?",
    ),
    forgetGroup: db.prepare<[string]>("DELETE FROM celery_ts_groups WHERE group_id = ?"),
  };
}

/** A native chord counter and group store in the backend's SQLite file, safe across processes. */
export function sqliteChords(
  path: string,
  expiresInMs: number,
): {
  chords: ChordCounter;
  groups: GroupStore;
  connection: Connection<ReturnType<typeof prepare>>;
} {
  const connection = createConnection({ path, what: "result backend", schema: SCHEMA, prepare });
  return {
    connection,
    chords: {
      async setSize(groupId, size) {
        connection.use((s) => s.upsertChord.run(groupId, size, Date.now() + expiresInMs));
      },
      async partReturn(groupId, part) {
        return connection.use((s) => s.partReturn(groupId, part, Date.now() + expiresInMs));
      },
      async clear(groupId) {
        connection.use((s) => s.clear(groupId));
      },
    },
    groups: {
      async saveGroup(groupId, tuple) {
        connection.use((s) =>
          s.saveGroup.run(groupId, encodeJson(tuple), Date.now() + expiresInMs),
        );
      },
      async getGroup(groupId) {
        const row = connection.use((s) => s.getGroup.get(groupId, Date.now()));
        return row ? (decodeJson(row.tuple) as ResultTuple) : undefined;
      },
      async forgetGroup(groupId) {
        connection.use((s) => s.forgetGroup.run(groupId));
      },
    },
  };
}
