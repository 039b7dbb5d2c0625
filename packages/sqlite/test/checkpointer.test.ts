import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createCheckpointer, type Checkpointer } from "../src/internal/checkpointer.ts";
import { useTempDir } from "./support/temp-dir.ts";

describe("sqlite checkpointer", () => {
  const dir = useTempDir();
  const made: Checkpointer[] = [];

  afterEach(() => {
    for (const checkpointer of made.splice(0)) checkpointer.close();
  });

  it("reports a thread that cannot checkpoint once, then checkpoints on later turns", async () => {
    const fallback = vi.fn();
    const report = vi.fn();
    // A file the thread cannot open: its checkpoint fails, not on a busy file.
    const checkpointer = createCheckpointer(join(dir(), "missing", "x.db"), fallback, report);
    made.push(checkpointer);
    checkpointer.run();
    await vi.waitFor(() => expect(fallback).toHaveBeenCalledTimes(1), { timeout: 10_000 });
    expect(report).toHaveBeenCalledTimes(1);
    expect(report.mock.calls[0]?.[0]).toMatch(/checkpoints now run on the event loop/);
    expect(report.mock.calls[0]?.[1]).toMatch(/open|exist/i);
    // From then on, here: after the call that asked for it, never inside it.
    checkpointer.run();
    expect(fallback).toHaveBeenCalledTimes(1);
    await vi.waitFor(() => expect(fallback).toHaveBeenCalledTimes(2));
    expect(report).toHaveBeenCalledTimes(1);
  });

  it("never creates the database file", async () => {
    const fallback = vi.fn();
    const report = vi.fn();
    const path = join(dir(), "deleted.db");
    const checkpointer = createCheckpointer(path, fallback, report);
    made.push(checkpointer);
    checkpointer.run();
    await vi.waitFor(() => expect(fallback).toHaveBeenCalledTimes(1), { timeout: 10_000 });
    expect(report).toHaveBeenCalledTimes(1);
    expect(existsSync(path)).toBe(false);
  });
});
