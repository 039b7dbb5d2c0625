import { CeleryTsError, decodeJson, encodeJson, type CoordinationStore } from "@celery-ts/core";
import { parseEntry, type BeatEntry } from "./beat-entry.ts";
import type { TickRecord } from "./plan-tick.ts";

/** The store keys of one beat namespace. */
export function beatKeys(namespace: string) {
  const base = `beat:${namespace}:`;
  return {
    base,
    /** The id of the instance that leads, with a ttl that it renews. */
    leader: `${base}leader`,
    /** The fencing counter: incremented by each new leader. */
    fence: `${base}fence`,
    /** Entries added at run time (`beat add`): JSON of a BeatEntry. */
    entry: `${base}entry:`,
    /** Entries from code or config, as the last leader saw them, for `beat list`. */
    code: `${base}code:`,
    /** Present while an entry is paused. */
    paused: `${base}paused:`,
    /** The TickRecord of each entry. */
    last: `${base}last:`,
  };
}

export type BeatKeys = ReturnType<typeof beatKeys>;

/** Sets `key` to `value` whatever it holds now (a compare-and-set loop). */
export async function putValue(
  store: CoordinationStore,
  key: string,
  value: string,
): Promise<void> {
  for (;;) {
    const current = await store.get(key);
    if (current === value || (await store.compareAndSet(key, current, value))) return;
  }
}

/** Deletes `key` whatever it holds; false when it was absent. */
export async function deleteValue(store: CoordinationStore, key: string): Promise<boolean> {
  for (;;) {
    const current = await store.get(key);
    if (current === undefined) return false;
    if (await store.deleteIfEquals(key, current)) return true;
  }
}

/** Reads a tick record; one that is not ours to read is treated as absent, and reported. */
export function decodeRecord(raw: string | undefined): TickRecord | undefined {
  if (raw === undefined) return undefined;
  try {
    const record = decodeJson(raw) as TickRecord;
    return typeof record?.tick === "number" ? record : undefined;
  } catch {
    return undefined;
  }
}

export interface BeatEntryStatus {
  name: string;
  /** The definition, when known: from the store, or as the leader last saw code and config. */
  entry: BeatEntry | undefined;
  /** `store`: added at run time; `code`: from code or a config file. */
  source: "store" | "code";
  paused: boolean;
  /** The last tick handled. */
  last: TickRecord | undefined;
}

/** The schedule as it is kept in the store: read it, and change it at run time. */
export interface BeatSchedule {
  /** Every entry known to the store, sorted by name. */
  list(): Promise<BeatEntryStatus[]>;
  /** Adds an entry, or changes the one of that name; every instance sees it on its next look. */
  add(entry: BeatEntry): Promise<void>;
  /** Removes a run-time entry and its tick record; false when there was none of that name. */
  remove(name: string): Promise<boolean>;
  /** Pauses an entry (from the store, code or config): its ticks are skipped until resumed. */
  pause(name: string): Promise<void>;
  /** Resumes a paused entry; ticks missed meanwhile stay skipped. */
  resume(name: string): Promise<void>;
}

export interface BeatScheduleOptions {
  store: CoordinationStore;
  /** Separates the schedules of unrelated apps sharing a store. @default "default" */
  namespace?: string;
  /** The default time zone of crontab entries, for checking added ones. @default "UTC" */
  timezone?: string;
}

function decodeEntry(raw: string): BeatEntry | undefined {
  try {
    return decodeJson(raw) as BeatEntry;
  } catch {
    return undefined;
  }
}

/** The run-time schedule API of one namespace of a store (what `celery-ts beat list|add|...` uses). */
export function createBeatSchedule(options: BeatScheduleOptions): BeatSchedule {
  const { store } = options;
  const keys = beatKeys(options.namespace ?? "default");

  const list = async (): Promise<BeatEntryStatus[]> => {
    const byName = new Map<string, BeatEntryStatus>();
    const status = (name: string): BeatEntryStatus => {
      let found = byName.get(name);
      if (!found) {
        found = { name, entry: undefined, source: "code", paused: false, last: undefined };
        byName.set(name, found);
      }
      return found;
    };
    for (const { key, value } of await store.list(keys.base)) {
      if (key.startsWith(keys.entry)) {
        Object.assign(status(key.slice(keys.entry.length)), {
          entry: decodeEntry(value),
          source: "store",
        });
      } else if (key.startsWith(keys.code)) {
        const found = status(key.slice(keys.code.length));
        if (found.source === "code") found.entry = decodeEntry(value);
      } else if (key.startsWith(keys.paused)) {
        status(key.slice(keys.paused.length)).paused = true;
      } else if (key.startsWith(keys.last)) {
        status(key.slice(keys.last.length)).last = decodeRecord(value);
      }
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  };

  return {
    list,
    async add(entry) {
      const parsed = parseEntry(entry, options.timezone);
      await putValue(store, `${keys.entry}${parsed.entry.name}`, encodeJson(parsed.entry));
    },
    async remove(name) {
      const removed = await deleteValue(store, `${keys.entry}${name}`);
      if (removed) {
        await deleteValue(store, `${keys.last}${name}`);
        await deleteValue(store, `${keys.paused}${name}`);
      }
      return removed;
    },
    async pause(name) {
      if (!(await list()).some((status) => status.name === name)) {
        throw new CeleryTsError(
          "CONFIG",
          `no beat entry named ${JSON.stringify(name)} in namespace ${JSON.stringify(options.namespace ?? "default")}; ` +
            "see celery-ts beat list",
          { pkg: "worker" },
        );
      }
      await store.setIfAbsent(`${keys.paused}${name}`, "1");
    },
    async resume(name) {
      await deleteValue(store, `${keys.paused}${name}`);
    },
  };
}
