import { describe, expect, it } from "vitest";
import {
  RetryTask,
  TaskFailedError,
  exceptionInfo,
  failureFromMeta,
  notRegisteredError,
  withExceptionArgs,
} from "../src/index.ts";

describe("exceptionInfo", () => {
  it("stores errors named like Python built-ins as those, so `except ValueError` catches them", () => {
    expect(exceptionInfo(new TypeError("bad"))).toEqual({
      exc_type: "TypeError",
      exc_message: ["bad"],
      exc_module: "builtins",
    });
  });

  it("leaves other error types without a module: Python makes a class of that name", () => {
    class GatewayBusyError extends Error {
      override name = "GatewayBusyError";
    }
    expect(exceptionInfo(new GatewayBusyError("busy")).exc_module).toBeNull();
    expect(exceptionInfo(new RangeError("far")).exc_module).toBeNull();
    expect(exceptionInfo("thrown string")).toEqual({
      exc_type: "Error",
      exc_message: ["thrown string"],
      exc_module: null,
    });
  });

  it("stores Celery's own exceptions with Celery's module and arguments", () => {
    const limit = withExceptionArgs(
      Object.assign(new Error("past 300 s"), { name: "TimeLimitExceeded" }),
      [300],
    );
    expect(exceptionInfo(limit)).toEqual({
      exc_type: "TimeLimitExceeded",
      exc_message: [300],
      exc_module: "billiard.exceptions",
    });
    expect(exceptionInfo(notRegisteredError("tasks.x"))).toEqual({
      exc_type: "NotRegistered",
      exc_message: ["tasks.x"],
      exc_module: "celery.exceptions",
    });
    expect(exceptionInfo(new RetryTask()).exc_module).toBe("celery.exceptions");
  });

  it("reads a failure's message as Python's str(exc) does", () => {
    const read = (exc_message: unknown[]) =>
      failureFromMeta({
        status: "FAILURE",
        result: { exc_type: "TimeLimitExceeded", exc_message, exc_module: "billiard.exceptions" },
        traceback: null,
        children: [],
        date_done: null,
        task_id: "t1",
      }).excMessage;
    expect([read([300]), read([]), read(["a"]), read(["a", 1])]).toEqual([
      "300",
      "",
      "a",
      '["a",1]',
    ]);
  });

  it("round-trips a failure read from another worker", () => {
    const failure = new TaskFailedError({
      taskId: "t1",
      excType: "ValueError",
      excMessage: "boom",
      excModule: "builtins",
      traceback: null,
    });
    const meta = {
      status: "FAILURE",
      result: exceptionInfo(failure),
      traceback: "tb",
      children: [],
      date_done: null,
      task_id: "t1",
    };
    expect(failureFromMeta(meta)).toMatchObject({
      excType: "ValueError",
      excMessage: "boom",
      traceback: "tb",
    });
  });
});
