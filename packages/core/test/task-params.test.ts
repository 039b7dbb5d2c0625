import { describe, expect, expectTypeOf, it } from "vitest";
import {
  TaskArgumentsError,
  bindArguments,
  callArguments,
  declareTask,
  defineTask,
  parseParams,
  taskCallArguments,
  type TaskKwargs,
  type TaskResult,
} from "../src/index.ts";

const call = (params: string[], args: unknown[], kwargs: Record<string, unknown> = {}) => {
  const list = parseParams("tasks.add", params);
  return callArguments(list, bindArguments(list, args, kwargs));
};

describe("binding a call to declared parameters, as Python does", () => {
  it("binds positional, keyword and mixed calls", () => {
    expect(call(["a", "b"], [1, 2])).toEqual([1, 2]);
    expect(call(["a", "b"], [], { a: 1, b: 2 })).toEqual([1, 2]);
    expect(call(["a", "b"], [], { b: 2, a: 1 })).toEqual([1, 2]);
    expect(call(["a", "b"], [1], { b: 2 })).toEqual([1, 2]);
  });

  it("leaves optional parameters out so the function's default applies", () => {
    expect(call(["a", "b?"], [1])).toEqual([1]);
    expect(call(["a", "b?", "c?"], [1], { c: 3 })).toEqual([1, undefined, 3]);
    const task = defineTask("tasks.add", (a: number, b: number = 10) => a + b, {
      params: ["a", "b?"],
    });
    expect(task.run(...(taskCallArguments(task, [], { a: 1 }) as [number]))).toBe(11);
  });

  it("collects extra positional and keyword arguments into *rest and **extra", () => {
    expect(call(["a", "*rest"], [1, 2, 3])).toEqual([1, 2, 3]);
    expect(call(["a", "**extra"], [1], { x: 1, y: 2 })).toEqual([1, { x: 1, y: 2 }]);
    expect(call(["a", "b?", "**extra"], [], { a: 1 })).toEqual([1, undefined, {}]);
  });

  it("refuses what Python refuses, with Python's TypeError wording and order", () => {
    const cases: [string[], unknown[], Record<string, unknown>, string][] = [
      [["a", "b"], [1], {}, "add() missing 1 required positional argument: 'b'"],
      [["a", "b"], [], {}, "add() missing 2 required positional arguments: 'a' and 'b'"],
      [["a", "b", "c"], [], {}, "add() missing 3 required positional arguments: 'a', 'b', and 'c'"],
      [["a", "b"], [1, 2, 3], {}, "add() takes 2 positional arguments but 3 were given"],
      [["a", "b?"], [1, 2, 3], {}, "add() takes from 1 to 2 positional arguments but 3 were given"],
      [[], [1], {}, "add() takes 0 positional arguments but 1 was given"],
      [["a"], [1, 2], {}, "add() takes 1 positional argument but 2 were given"],
      [["a", "b"], [1], { b: 2, c: 3 }, "add() got an unexpected keyword argument 'c'"],
      [["a", "b"], [1], { a: 2 }, "add() got multiple values for argument 'a'"],
      // Python checks keywords before the positional count.
      [["a", "b"], [1, 2, 3], { c: 1 }, "add() got an unexpected keyword argument 'c'"],
      [["a", "b"], [1, 2, 3], { a: 1 }, "add() got multiple values for argument 'a'"],
      [["a", "*rest"], [], { rest: 1 }, "add() got an unexpected keyword argument 'rest'"],
    ];
    for (const [params, args, kwargs, message] of cases) {
      const error = (() => {
        try {
          call(params, args, kwargs);
        } catch (thrown) {
          return thrown;
        }
        return undefined;
      })();
      expect(error, message).toBeInstanceOf(TaskArgumentsError);
      expect((error as Error).name).toBe("TypeError");
      expect((error as Error).message).toBe(message);
    }
  });

  it("calls a keywords-style function with one object", () => {
    const list = parseParams("tasks.add", ["a", "b?", "**extra"], "keywords");
    expect(callArguments(list, bindArguments(list, [1], { z: 26 }))).toEqual([
      { a: 1, extra: { z: 26 } },
    ]);
  });

  it("refuses keyword arguments and missing arguments for a task without params", () => {
    const add = defineTask("tasks.add", (a: number, b: number) => a + b);
    expect(taskCallArguments(add, [1, 2], {})).toEqual([1, 2]);
    expect(() => taskCallArguments(add, [], { a: 1, b: 2 })).toThrow(
      "add() got an unexpected keyword argument 'a'",
    );
    expect(() => taskCallArguments(add, [1], {})).toThrow(
      "add() missing 1 required positional argument",
    );
  });

  it("rejects params Python would not compile, naming the task", () => {
    expect(() => parseParams("t.x", ["a?", "b"])).toThrow(/required "b" follows optional "a\?"/);
    expect(() => parseParams("t.x", ["a", "a"])).toThrow(/declared twice/);
    expect(() => parseParams("t.x", ["**k", "a"])).toThrow(/must be the last/);
    expect(() => parseParams("t.x", ["*r", "a"])).toThrow(/comes after/);
    expect(() => parseParams("t.x", ["*r", "**k"])).toThrow(/style "keywords"/);
    expect(() => parseParams("t.x", ["1a"])).toThrow(/not a parameter name/);
    expect(() => defineTask("t.x", (a: number, b: number) => a + b, { params: ["a"] })).toThrow(
      /takes 2 parameters but params names 1/,
    );
    expect(() => declareTask("t.x", { params: ["a?", "b"] })).toThrow(/CONFIG|follows/);
  });
});

describe("keyword argument types", () => {
  it("come from the parameter names and the function's types", () => {
    const add = defineTask("tasks.add", (a: number, b: string) => a + b, { params: ["a", "b"] });
    expect(add.name).toBe("tasks.add");
    expectTypeOf<TaskKwargs<typeof add>>().toEqualTypeOf<{ a: number; b: string }>();
    const opt = defineTask("tasks.opt", (a: number, b: string = "x") => a + b, {
      params: ["a", "b?"],
    });
    expectTypeOf<TaskKwargs<typeof opt>>().toEqualTypeOf<{ a: number; b?: string }>();
    const kw = defineTask("tasks.kw", ({ a }: { a: number }) => a, {
      params: ["a"],
      style: "keywords",
    });
    expectTypeOf<TaskKwargs<typeof kw>>().toEqualTypeOf<{ a: number }>();
    const plain = defineTask("tasks.plain", (a: number) => a);
    expectTypeOf<TaskKwargs<typeof plain>>().toEqualTypeOf<object>();
    expect([opt, kw, plain].map((task) => task.options.params)).toEqual([
      ["a", "b?"],
      ["a"],
      undefined,
    ]);
  });
});

describe("result types after JSON", () => {
  it("type a bigint result as bigint | number: small ones come back as numbers", () => {
    const big = defineTask("tasks.big", () => ({ total: 2n ** 64n, items: [1n], at: new Date() }));
    expectTypeOf<TaskResult<typeof big>>().toEqualTypeOf<{
      total: bigint | number;
      items: (bigint | number)[];
      at: Date;
    }>();
    expect(big.name).toBe("tasks.big");
  });
});
