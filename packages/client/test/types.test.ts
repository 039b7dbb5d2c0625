import {
  createMemoryTransport,
  declareTask,
  defineTask,
  type TaskFailedError,
} from "@celery-ts/core";
import { describe, expectTypeOf, it } from "vitest";
import { createClient, type AsyncResult } from "../src/index.ts";

// Compile-time checks: `pnpm typecheck` runs over test/, so each `@ts-expect-error` below fails
// the build if the line it marks ever compiles. The functions are type-checked, never called.

const client = createClient({ broker: createMemoryTransport() });
const addDeclaration = declareTask<[number, number], number>("tasks.add");
const add = client.task(addDeclaration);

export async function argumentsAreTyped(): Promise<void> {
  await add.delay(2, 3);
  await add.applyAsync([2, 3], { countdown: 10, priority: 5, queue: "math" });
  // @ts-expect-error a string is not a number (and add takes two)
  await add.delay("x");
  // @ts-expect-error a string is not a number
  await add.delay("2", 3);
  // @ts-expect-error add takes two arguments
  await add.delay(2);
  // @ts-expect-error applyAsync takes the arguments as a tuple
  await add.applyAsync(2, 3);
  // @ts-expect-error countdown is a number of seconds
  await add.applyAsync([2, 3], { countdown: "10s" });
  // @ts-expect-error eta is a Date, not seconds (that is countdown)
  await add.applyAsync([2, 3], { eta: 10 });
}

export async function resultsAreTyped(): Promise<void> {
  const result = await add.delay(2, 3);
  const sum: number = await result.get();
  // @ts-expect-error add resolves a number
  const text: string = await result.get();
  // @ts-expect-error an AsyncResult<number> is not an AsyncResult<string>
  const wrong: AsyncResult<string> = result;
  void [sum, text, wrong];
}

export async function sendTaskIsTypedByItsParameter(): Promise<void> {
  const typed = await client.sendTask<number>("tasks.add", { args: [2], kwargs: { b: 5 } });
  const sum: number = await typed.get();
  // @ts-expect-error sendTask<number> resolves a number
  const text: string = await typed.get();
  const untyped = await client.sendTask("tasks.add");
  // @ts-expect-error without a type parameter the result is unknown
  const guessed: number = await untyped.get();
  void [sum, text, guessed];
}

describe("types", () => {
  it("infers arguments and result from a declaration", () => {
    expectTypeOf(add.delay).parameters.toEqualTypeOf<[number, number]>();
    expectTypeOf(add.delay).returns.resolves.toEqualTypeOf<AsyncResult<number>>();
    expectTypeOf<Awaited<ReturnType<typeof add.applyAsync>>>().toEqualTypeOf<AsyncResult<number>>();
  });

  it("infers them from a definition, awaiting an async result", () => {
    const greet = client.task(defineTask("tasks.greet", async (name: string) => `hello ${name}`));
    expectTypeOf(greet.delay).parameters.toEqualTypeOf<[name: string]>();
    expectTypeOf(greet.delay).returns.resolves.toEqualTypeOf<AsyncResult<string>>();
  });

  it("types get() by propagate", () => {
    const result = client.asyncResult<number>("id");
    const propagating = () => result.get({ timeout: 1 });
    expectTypeOf(propagating).returns.resolves.toEqualTypeOf<number>();
    const settled = () => result.get({ propagate: false });
    expectTypeOf(settled).returns.resolves.toEqualTypeOf<number | TaskFailedError>();
  });

  it("types sendTask() and asyncResult() by their parameter, unknown by default", () => {
    expectTypeOf(client.sendTask<number>).returns.resolves.toEqualTypeOf<AsyncResult<number>>();
    expectTypeOf(client.sendTask).returns.resolves.toEqualTypeOf<AsyncResult<unknown>>();
    expectTypeOf(client.asyncResult).returns.toEqualTypeOf<AsyncResult<unknown>>();
  });
});

const addKw = defineTask("tasks.add", (a: number, b: number) => a + b, { params: ["a", "b"] });
const mergeKw = defineTask("tasks.merge", ({ a }: { a: string; b?: string }) => a, {
  params: ["a", "b?"],
  style: "keywords",
});

export async function keywordArgumentsAreTyped(): Promise<void> {
  const handle = client.task(addKw);
  await handle.applyAsync({ kwargs: { a: 1, b: 2 } });
  await handle.applyAsync({ args: [1], kwargs: { b: 2 } });
  await handle.applyAsync({ args: [1, 2] });
  // @ts-expect-error b is required when no positional argument gives it
  await handle.applyAsync({ kwargs: { a: 1 } });
  // @ts-expect-error c is not a parameter of add
  await handle.applyAsync({ kwargs: { a: 1, b: 2, c: 3 } });
  // @ts-expect-error b is a number
  await handle.applyAsync({ args: [1], kwargs: { b: "2" } });
  // @ts-expect-error add takes two positional arguments at most
  await handle.applyAsync({ args: [1, 2, 3] });
  await client.task(mergeKw).delay({ a: "x" });
  // @ts-expect-error a is required
  await client.task(mergeKw).delay({ b: "x" });
  // @ts-expect-error a task that declares no params takes no keyword arguments
  await add.applyAsync({ kwargs: { a: 1, b: 2 } });
}
