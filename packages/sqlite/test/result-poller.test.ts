import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { notifyChange, subscribeToChanges } from "../src/internal/change-feed.ts";
import { ResultPoller, type ResultRow } from "../src/internal/result-poller.ts";
import { useTempDir } from "./support/temp-dir.ts";

/** One turn of the event loop: the immediates queued before it have run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("sqlite result poller", () => {
  const dir = useTempDir();
  afterEach(() => vi.useRealTimers());

  it("stays subscribed to the change feed for a wait begun just after a change notice", async () => {
    // Only the timeouts are fake: the linger that unsubscribes, and a poll interval never reached.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const path = join(dir(), "results.db");
    let rows: ResultRow[] = [];
    const poller = new ResultPoller({ path, pollIntervalMs: 60_000, readyAmong: () => rows });
    // Another listener on the file, so a notice before the wait is delivered after it begins.
    const unsubscribe = subscribeToChanges(path, "results", () => undefined);
    try {
      notifyChange(path, "results");
      let meta: unknown;
      const waiting = poller.wait("t", { timeout: 600 }).then((value) => (meta = value));
      await turn(); // the notice's poll (no waiter yet), then the wait's first look (nothing)
      await turn();
      // Longer than the change feed lingers once nothing waits: this wait still waits.
      vi.advanceTimersByTime(1_500);
      rows = [{ task_id: "t", meta: JSON.stringify({ status: "SUCCESS", result: 1 }) }];
      notifyChange(path, "results");
      await turn();
      vi.advanceTimersByTime(10); // a poll deferred by the last one's duration, if any
      await turn();
      expect(meta).toMatchObject({ result: 1 });
      await waiting;
    } finally {
      poller.close(new Error("closed"));
      unsubscribe();
    }
  });
});
