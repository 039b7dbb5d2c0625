import { describe, expect, expectTypeOf, it } from "vitest";
import { declareTask, defineTask, type TaskArgs, type TaskResult } from "../src/index.ts";

describe("task definitions", () => {
  it("carry argument and result types from the function", () => {
    const add = defineTask("tasks.add", (a: number, b: number) => a + b);
    expectTypeOf<TaskArgs<typeof add>>().toEqualTypeOf<[a: number, b: number]>();
    expectTypeOf<TaskResult<typeof add>>().toEqualTypeOf<number>();
    expect(add.run(2, 3)).toBe(5);
  });

  it("implement a declaration, checked against its types", () => {
    const declared = declareTask<[string], { length: number }>("text.measure", { queue: "text" });
    const impl = defineTask(declared, (text) => ({ length: text.length }), { ignoreResult: true });
    expect(impl.name).toBe("text.measure");
    expect(impl.options).toEqual({ queue: "text", ignoreResult: true });
    // @ts-expect-error the declaration takes a string and returns { length }
    defineTask(declared, (n: number) => n);
  });

  it("need a name and a function", () => {
    expect(() => declareTask("")).toThrow(/non-empty name/);
    // @ts-expect-error run is required
    expect(() => defineTask("t", undefined)).toThrow(/needs a function/);
  });
});
