// The task's lazily made abort signal: the first reason wins, whether or not the signal was read
// when it came, and a shutdown after the run leaves it alone.
import { describe, expect, it } from "vitest";
import { TaskAbort, Terminator } from "../src/internal/task-abort.ts";

const reasonOf = (signal: AbortSignal): string => (signal.reason as Error).message;

describe("TaskAbort", () => {
  it("aborts a signal already read when the worker's shutdown fires", () => {
    const shutdown = new AbortController();
    const abort = new TaskAbort(shutdown.signal);
    const { signal } = abort;
    shutdown.abort(new Error("shutdown"));
    expect(signal.aborted).toBe(true);
    expect(reasonOf(signal)).toBe("shutdown");
  });

  it("keeps the first reason when the signal is read after both came", () => {
    const first = new AbortController();
    const shutFirst = new TaskAbort(first.signal);
    first.abort(new Error("shutdown"));
    shutFirst.abort(new Error("soft limit"));
    expect(reasonOf(shutFirst.signal)).toBe("shutdown");

    const later = new AbortController();
    const softFirst = new TaskAbort(later.signal);
    softFirst.abort(new Error("soft limit"));
    later.abort(new Error("shutdown"));
    expect(reasonOf(softFirst.signal)).toBe("soft limit");
  });

  it("leaves the signal alone when the shutdown comes after the run ended", () => {
    const read = new AbortController();
    const readAbort = new TaskAbort(read.signal);
    const { signal } = readAbort;
    readAbort.end();
    read.abort(new Error("shutdown"));
    expect(signal.aborted).toBe(false);

    const unread = new AbortController();
    const unreadAbort = new TaskAbort(unread.signal);
    unreadAbort.end();
    unread.abort(new Error("shutdown"));
    expect(unreadAbort.signal.aborted).toBe(false);
  });
});

describe("Terminator", () => {
  it("tells its listener once, at once when already terminated", () => {
    const terminator = new Terminator();
    terminator.terminate(new Error("revoked"));
    terminator.terminate(new Error("again"));
    const heard: string[] = [];
    terminator.listen((reason) => heard.push(reason.message));
    expect(terminator.terminated).toBe(true);
    expect(heard).toEqual(["revoked"]);
  });
});
