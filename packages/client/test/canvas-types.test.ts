import { createMemoryTransport, declareTask } from "@celery-ts/core";
import { describe, expectTypeOf, it } from "vitest";
import {
  chain,
  chord,
  chunks,
  createClient,
  group,
  map,
  s,
  si,
  starmap,
  type AsyncResult,
  type GroupResult,
  type Sig,
} from "../src/index.ts";

// Compile-time checks: `pnpm typecheck` runs over test/, so each `@ts-expect-error` below fails
// the build if the line it marks ever compiles. The functions are type-checked, never called.

const client = createClient({ broker: createMemoryTransport() });
const add = declareTask<[number, number], number>("tasks.add");
const upper = declareTask<[string], string>("tasks.upper");
const length = declareTask<[string], number>("tasks.length");
const total = declareTask<[number[]], number>("tasks.total");
const report = declareTask<[string, number], { title: string; value: number }>("tasks.report");

export function partialArgumentsAreTyped(): void {
  expectTypeOf(s(add)).toEqualTypeOf<Sig<[number, number], number, false>>();
  expectTypeOf(s(add, 1)).toEqualTypeOf<Sig<[number], number, false>>();
  expectTypeOf(s(add, 1, 2)).toEqualTypeOf<Sig<[], number, false>>();
  expectTypeOf(si(add, 1, 2)).toEqualTypeOf<Sig<[], number, true>>();
  // Bound arguments are the last ones: the previous result goes first, as in Celery.
  expectTypeOf(s(report, 7)).toEqualTypeOf<
    Sig<[string], { title: string; value: number }, false>
  >();
  // @ts-expect-error report's last argument is a number
  s(report, "title");
  // @ts-expect-error a string is not a number
  s(add, "1");
  // @ts-expect-error add takes two arguments
  s(add, 1, 2, 3);
  // @ts-expect-error an immutable signature binds every argument
  si(add, 1);
}

export async function chainsCheckEachStep(): Promise<void> {
  const ok = chain(s(upper, "a"), s(length), s(add, 1));
  expectTypeOf(ok).toEqualTypeOf<Sig<[], number, false>>();
  const result = await client.applyAsync(ok);
  expectTypeOf(result).toEqualTypeOf<AsyncResult<number>>();
  // An immutable step takes nothing from the step before.
  chain(s(upper, "a"), si(add, 1, 2));
  // A chain can start with a partial step: the call gives its arguments.
  await client.applyAsync(chain(s(length), s(add, 2)), { args: ["word"] });
  // @ts-expect-error add's remaining argument is a number; upper returns a string
  chain(s(upper, "a"), s(add, 1));
  // @ts-expect-error a step that still takes two arguments cannot follow one
  chain(s(length, "a"), s(add));
  // @ts-expect-error a complete (mutable) signature cannot take the previous result either
  chain(s(length, "a"), s(add, 1, 2));
  // @ts-expect-error the call's args must fit the first step
  await client.applyAsync(chain(s(length), s(add, 2)), { args: [1] });
}

export async function groupsAndChordsAreTyped(): Promise<void> {
  const g = group(s(add, 1, 2), s(upper, "x"), s(report, "t", 1));
  const result = await client.applyAsync(g);
  expectTypeOf(result).toEqualTypeOf<
    GroupResult<[number, string, { title: string; value: number }]>
  >();
  const values = await result.get();
  expectTypeOf(values).toEqualTypeOf<[number, string, { title: string; value: number }]>();
  const many = group(...[1, 2, 3].map((i) => s(add, i, i)));
  expectTypeOf(await (await client.applyAsync(many)).get()).toEqualTypeOf<number[]>();

  const c = chord([s(add, 1, 2), s(add, 3, 4)], s(total));
  expectTypeOf(await client.applyAsync(c)).toEqualTypeOf<AsyncResult<number>>();
  // @ts-expect-error the body must take the header's results (numbers, not a string)
  chord([s(add, 1, 2), s(add, 3, 4)], s(upper));
  // @ts-expect-error the header's results are strings here, the body sums numbers
  chord([s(upper, "a")], s(total));
  // The body takes the results first, then its bound arguments.
  const titled = declareTask<[number[], string], string>("tasks.titled");
  expectTypeOf(await client.applyAsync(chord([s(add, 1, 2)], s(titled, "Q1")))).toEqualTypeOf<
    AsyncResult<string>
  >();
}

export async function mapsAndChunksAreTyped(): Promise<void> {
  expectTypeOf(await (await client.applyAsync(map(upper, ["a", "b"]))).get()).toEqualTypeOf<
    string[]
  >();
  expectTypeOf(await (await client.applyAsync(starmap(add, [[1, 2]]))).get()).toEqualTypeOf<
    number[]
  >();
  expectTypeOf(await (await client.applyAsync(chunks(add, [[1, 2]], 10))).get()).toEqualTypeOf<
    number[][]
  >();
  // @ts-expect-error starmap's items are add's argument tuples
  starmap(add, [[1, "2"]]);
  // @ts-expect-error map's items are upper's one argument
  map(upper, [1]);
}

export function linksAreTyped(): void {
  s(add, 1, 2).link(s(add, 1));
  s(add, 1, 2).link(si(upper, "done"));
  s(add, 1, 2).linkError(s(upper));
  // @ts-expect-error the callback gets a number; upper takes a string
  s(add, 1, 2).link(s(upper));
  // @ts-expect-error an errback gets the failed task's id, a string
  s(add, 1, 2).linkError(s(add, 1));
}

describe("canvas types", () => {
  it("are checked by tsc (see the functions above)", () => {
    expectTypeOf(partialArgumentsAreTyped).toBeFunction();
  });
});
