import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { acquireSharedDb, type SharedDb } from "../src/internal/shared-db.ts";
import { commitUntilCheckpointed } from "./support/checkpointed.ts";
import { useTempDir } from "./support/temp-dir.ts";

// No thread works in this file: checkpoints must fall back to the event loop. `mode` says how
// the thread fails: it cannot start, or it ends (without an error) when asked to checkpoint.
const mode = vi.hoisted(() => ({ current: "throw" as "throw" | "exit" }));
vi.mock("node:worker_threads", async () => {
  const { EventEmitter } = await import("node:events");
  return {
    Worker: class extends EventEmitter {
      constructor() {
        super();
        if (mode.current === "throw") throw new Error("no threads here");
      }
      unref(): void {}
      postMessage(): void {
        setImmediate(() => this.emit("exit", 3));
      }
    },
  };
});

describe("sqlite checkpoints without their thread", () => {
  const dir = useTempDir();
  const file = (): string => join(dir(), "fallback.db");
  const held: SharedDb[] = [];

  afterEach(() => {
    for (const shared of held.splice(0)) shared.release();
    vi.restoreAllMocks();
  });

  const commitAndCheck = async (): Promise<string[]> => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const shared = acquireSharedDb(file());
    held.push(shared);
    // One commit each: a checkpoint is due after every hundred of them, three in all.
    await commitUntilCheckpointed(shared, file(), 350, 300 * 2000);
    return warn.mock.calls.map(([message]) => String(message));
  };

  it("warns once when the thread cannot start, and checkpoints on the event loop", async () => {
    mode.current = "throw";
    const warnings = await commitAndCheck();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/checkpoints now run on the event loop: no threads here/);
  });

  it("warns once when the thread ends, and checkpoints on the event loop", async () => {
    mode.current = "exit";
    const warnings = await commitAndCheck();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/checkpoints now run on the event loop: .*exit code 3/);
  });
});
