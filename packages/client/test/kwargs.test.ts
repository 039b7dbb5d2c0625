import { declareTask, defineTask, isCeleryTsError } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { setup } from "./support.ts";

const add = defineTask("tasks.add", (a: number, b: number, c: number = 0) => a + b + c, {
  params: ["a", "b", "c?"],
});
const merge = defineTask("tasks.merge", ({ a, b }: { a: string; b?: string }) => a + (b ?? ""), {
  params: ["a", "b?"],
  style: "keywords",
});

describe("keyword arguments from a task handle", () => {
  it("go out as Python's kwargs, alone or after leading positional arguments", async () => {
    const { client, next } = setup();
    await client.task(add).applyAsync({ kwargs: { a: 1, b: 2 } });
    expect(next().message).toMatchObject({ args: [], kwargs: { a: 1, b: 2 } });
    await client.task(add).applyAsync({ args: [1], kwargs: { b: 2 } }, { countdown: 1 });
    const mixed = next().message;
    expect(mixed).toMatchObject({ args: [1], kwargs: { b: 2 } });
    expect(mixed.headers).toMatchObject({ argsrepr: "(1,)", kwargsrepr: "{'b': 2}" });
    await client.task(add).delay(1, 2);
    expect(next().message).toMatchObject({ args: [1, 2], kwargs: {} });
  });

  it("a keywords-style task's object goes out as kwargs", async () => {
    const { client, next } = setup();
    await client.task(merge).delay({ a: "x", b: "y" });
    expect(next().message).toMatchObject({ args: [], kwargs: { a: "x", b: "y" } });
  });

  it("a call that cannot bind throws Python's TypeError before anything is sent", async () => {
    const { client, broker } = setup();
    const declared = declareTask<[number, number], number, { a: number; b: number }>("py.add", {
      params: ["a", "b"],
    });
    await expect(client.task(declared).applyAsync({ args: [1], kwargs: { a: 1 } })).rejects.toThrow(
      "add() got multiple values for argument 'a'",
    );
    // @ts-expect-error b is required
    const missing = client.task(declared).applyAsync({ kwargs: { a: 1 } });
    await expect(missing).rejects.toThrow("add() missing 1 required positional argument: 'b'");
    await expect(missing).rejects.toSatisfy((error) => !isCeleryTsError(error));
    expect(broker.take(["celery"], Infinity)).toBeUndefined();
  });
});
