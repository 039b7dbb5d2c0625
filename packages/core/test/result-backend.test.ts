import { describe, expect, it } from "vitest";
import { TaskFailedError, exceptionInfo, failureFromMeta } from "../src/index.ts";

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
