import { existsSync, rmSync, watch } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { notifyChange } from "../src/internal/change-feed.ts";
import { acquireSharedDb, type SharedDb } from "../src/internal/shared-db.ts";
import { useTempDir } from "./support/temp-dir.ts";

describe("sqlite change feed", () => {
  const dir = useTempDir();
  const file = (): string => join(dir(), "feed.db");
  const wake = (): string => `${file()}-celery-ts-wake`;
  const held: SharedDb[] = [];

  afterEach(() => {
    for (const shared of held.splice(0)) shared.release();
  });

  it("tells other processes of each change with a write to the wake file", async () => {
    held.push(acquireSharedDb(file()));
    const events: string[] = [];
    const watcher = watch(dir(), (_event, name) => {
      if (name !== null) events.push(name);
    });
    try {
      notifyChange(file(), "messages");
      await vi.waitFor(() => expect(events).toContain("feed.db-celery-ts-wake"));
      events.length = 0;
      notifyChange(file(), "results");
      await vi.waitFor(() => expect(events).toContain("feed.db-celery-ts-wake"));
    } finally {
      watcher.close();
    }
  });

  it("makes the wake file again when it was deleted while held open", async () => {
    held.push(acquireSharedDb(file()));
    notifyChange(file(), "messages");
    expect(existsSync(wake())).toBe(true);
    rmSync(wake());
    // The descriptor is opened again by name within a second.
    await vi.waitFor(
      () => {
        notifyChange(file(), "messages");
        expect(existsSync(wake())).toBe(true);
      },
      { timeout: 5_000, interval: 100 },
    );
  });
});
