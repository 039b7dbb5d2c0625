import { currentTask, defineTask } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { Fixture, setups, useWorkers } from "./harness.ts";

describe.each(setups)("keyword arguments on $name", ({ create }) => {
  const workers = useWorkers(create);
  const { start } = workers;
  const calls: unknown[][] = [];
  const add = defineTask(
    "tasks.add",
    (a: number, b: number, c: number = 100) => {
      calls.push([a, b, c]);
      return a + b + c;
    },
    { params: ["a", "b", "c?"] },
  );
  const merge = defineTask("tasks.merge", ({ a, b }: { a: string; b?: string }) => a + (b ?? "-"), {
    params: ["a", "b?"],
    style: "keywords",
  });
  const plain = defineTask("tasks.plain", (a: number, b: number) => {
    calls.push([a, b]);
    return a + b;
  });

  it("binds keyword, positional and mixed calls as Python does", async () => {
    const f = await start([add, merge]);
    const results = await Promise.all(
      [
        f.send({ task: "tasks.add", kwargs: { a: 1, b: 2 } }),
        f.send({ task: "tasks.add", args: [1], kwargs: { b: 2, c: 3 } }),
        f.send({ task: "tasks.add", args: [1, 2, 3] }),
        f.send({ task: "tasks.merge", kwargs: { a: "x" } }),
        f.send({ task: "tasks.merge", args: ["x", "y"] }),
      ].map(async (id) => (await f.wait(await id)).result),
    );
    expect(results).toEqual([103, 6, 6, "x-", "xy"]);
  });

  it("stores FAILURE with Python's TypeError and never runs a call that does not fit", async () => {
    calls.length = 0;
    const f = await start([add, plain]);
    const cases: [Parameters<Fixture["send"]>[0], string][] = [
      [
        { task: "tasks.add", kwargs: { a: 1 } },
        "add() missing 1 required positional argument: 'b'",
      ],
      [
        { task: "tasks.add", args: [1, 2, 3, 4] },
        "add() takes from 2 to 3 positional arguments but 4 were given",
      ],
      [
        { task: "tasks.add", args: [1], kwargs: { a: 1, b: 2 } },
        "add() got multiple values for argument 'a'",
      ],
      [
        { task: "tasks.add", kwargs: { a: 1, b: 2, d: 4 } },
        "add() got an unexpected keyword argument 'd'",
      ],
      // A task without declared names refuses keyword arguments rather than drop them.
      [
        { task: "tasks.plain", kwargs: { a: 1, b: 2 } },
        "plain() got an unexpected keyword argument 'a'",
      ],
      [{ task: "tasks.plain", args: [1] }, "plain() missing 1 required positional argument"],
    ];
    for (const [input, message] of cases) {
      const meta = await f.wait(await f.send(input));
      expect(meta.status, message).toBe("FAILURE");
      expect(meta.result).toEqual({
        exc_type: "TypeError",
        exc_message: [message],
        exc_module: "builtins",
      });
    }
    expect(calls).toEqual([]);
  });

  it("keeps the raw keyword arguments in currentTask().kwargs", async () => {
    const raw = defineTask("tasks.raw", (a: number) => ({ a, kwargs: currentTask().kwargs }), {
      params: ["a"],
    });
    const f = await start([raw]);
    const meta = await f.wait(await f.send({ task: "tasks.raw", kwargs: { a: 1 } }));
    expect(meta.result).toEqual({ a: 1, kwargs: { a: 1 } });
  });
});
