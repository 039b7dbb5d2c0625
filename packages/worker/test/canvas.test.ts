import {
  createClient,
  chain,
  chord,
  chunks,
  group,
  map,
  s,
  si,
  starmap,
  type Client,
} from "@celery-ts/client";
import {
  CeleryTsError,
  currentTask,
  declareTask,
  defineTask,
  type AnyTaskDefinition,
} from "@celery-ts/core";
import { captureLogger, waitUntil } from "@celery-ts/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Fixture, setups, type Setup } from "./harness.ts";

const add = declareTask<[number, number], number>("canvas.add");
const mul = declareTask<[number, number], number>("canvas.mul");
const total = declareTask<[number[]], number>("canvas.total");
const fail = declareTask<[string], never>("canvas.fail");
const record = declareTask<[unknown], string>("canvas.record");
const headersOf = declareTask<[], Record<string, unknown>>("canvas.headers");

describe.each(setups)("canvas on $name", ({ create }) => {
  let setup: Setup;
  let fixture: Fixture;
  let client: Client;
  const recorded: unknown[] = [];

  const tasks = (): AnyTaskDefinition[] => [
    defineTask(add, (a, b) => a + b),
    defineTask(mul, (a, b) => a * b),
    defineTask(total, (values) => values.reduce((sum, v) => sum + v, 0)),
    defineTask(fail, (message) => {
      throw new RangeError(message);
    }),
    defineTask(record, (value) => {
      recorded.push(value);
      return "recorded";
    }),
    defineTask(headersOf, () => {
      const { monitor, stamped_headers, replaced_task_nesting } = currentTask().headers;
      return { monitor, stamped_headers, replaced_task_nesting };
    }),
  ];

  beforeEach(async () => {
    setup = await create();
    recorded.length = 0;
    fixture = new Fixture(setup, tasks());
    await fixture.worker.start();
    client = createClient({ broker: setup.transport(), backend: setup.backend });
  });
  afterEach(async () => {
    await fixture.worker.stop();
    await client.close();
    await setup.close();
  });
  /** The signature, routed to this test's queue. */
  const on = <T extends { set(o: { queue: string }): T }>(sig: T): T =>
    sig.set({ queue: setup.queue });

  it("runs a chain, each step given the previous result, with parents linked", async () => {
    const result = await client.applyAsync(chain(on(s(add, 1, 2)), on(s(add, 3)), on(s(mul, 10))));
    expect(await result.get({ timeout: 10 })).toBe(60);
    const middle = result.parent as typeof result;
    expect(await middle.get({ timeout: 10 })).toBe(6);
    const first = middle.parent as typeof result;
    expect(await first.get({ timeout: 10 })).toBe(3);
    expect(first.parent).toBeNull();
    // Each step lists the next as its child, as Celery's worker stores it.
    const children = await first.children();
    expect(children.map((c) => c.id)).toEqual([middle.id]);
  });

  it("an immutable step ignores the previous result; partial args come first", async () => {
    const result = await client.applyAsync(chain(on(s(add, 1)), on(si(mul, 2, 5))), { args: [4] });
    expect(await result.get({ timeout: 10 })).toBe(10);
    expect(await (result.parent as typeof result).get({ timeout: 10 })).toBe(5);
  });

  it("runs a group and types its results in order", async () => {
    const result = await client.applyAsync(
      group(on(s(add, 1, 1)), on(s(mul, 3, 3)), on(s(add, 5, 5))),
    );
    const values: [number, number, number] = await result.get({ timeout: 10 });
    expect(values).toEqual([2, 9, 10]);
    expect(await result.completedCount()).toBe(3);
    await result.save();
    const restored = await client.restoreGroup<[number, number, number]>(result.id);
    expect(restored?.results.map((r) => r.id)).toEqual(result.results.map((r) => r.id));
    expect(await restored?.get({ timeout: 10 })).toEqual([2, 9, 10]);
  });

  it("runs a chord: the body gets the header's results in order", async () => {
    const header = Array.from({ length: 10 }, (_, i) => on(s(mul, i, 2)));
    const result = await client.applyAsync(chord(header, on(s(total))));
    expect(await result.get({ timeout: 15 })).toBe(90);
    const headerResult = result.parent as { results: readonly unknown[] };
    expect(headerResult.results).toHaveLength(10);
  });

  it("a group followed by a step becomes a chord", async () => {
    const result = await client.applyAsync(
      chain(group(on(s(add, 1, 1)), on(s(add, 2, 2))), on(s(total)), on(s(mul, 10))),
    );
    expect(await result.get({ timeout: 15 })).toBe(60);
  });

  it("a failed header part fails the chord body with ChordError and calls its errback", async () => {
    const result = await client.applyAsync(
      chord([on(s(add, 1, 1)), on(s(fail, "part broke"))], on(s(total)).linkError(on(s(record)))),
    );
    const failure = await result.get({ timeout: 15, propagate: false });
    expect(failure).toMatchObject({ excType: "ChordError" });
    expect(String((failure as Error).message)).toMatch(
      /Dependency .* raised RangeError\('part broke'\)/,
    );
    await expect.poll(() => recorded, { timeout: 10_000 }).toEqual([result.id]);
  });

  it("link gets the result; link_error gets the failed task's id; a failed chain fails its later steps", async () => {
    const linked = await client.applyAsync(on(s(add, 2, 2)).link(on(s(record))));
    expect(await linked.get({ timeout: 10 })).toBe(4);
    await expect.poll(() => recorded, { timeout: 10_000 }).toEqual([4]);
    expect((await linked.children()).length).toBe(1);

    const broken = await client.applyAsync(
      chain(on(s(fail, "boom")), on(s(add, 1)), on(s(mul, 2))).linkError(on(s(record))),
    );
    const failure = await broken.get({ timeout: 10, propagate: false });
    expect(failure).toMatchObject({ excType: "RangeError", excMessage: "boom" });
    const firstId = (broken.parent as typeof broken).parent!.id;
    await expect.poll(() => recorded, { timeout: 10_000 }).toContain(firstId);
  });

  it("runs chunks, map and starmap", async () => {
    const pairs: [number, number][] = Array.from({ length: 7 }, (_, i) => [i, i]);
    const chunked = await client.applyAsync(chunks(add, pairs, 3).set({ queue: setup.queue }));
    expect(await chunked.get({ timeout: 10 })).toEqual([[0, 2, 4], [6, 8, 10], [12]]);
    const mapped = await client.applyAsync(map(total, [[1, 2], [3]]).set({ queue: setup.queue }));
    expect(await mapped.get({ timeout: 10 })).toEqual([3, 3]);
    const starred = await client.applyAsync(
      starmap(mul, pairs.slice(0, 3)).set({ queue: setup.queue }),
    );
    expect(await starred.get({ timeout: 10 })).toEqual([0, 1, 4]);
  });

  it("falls back to Celery's celery.chord_unlock where the backend has no chord counter", async () => {
    const { chords: _native, ...plain } = setup.backend;
    const queue = `${setup.queue}-unlock`;
    const other = new Fixture(setup, tasks(), { backend: plain, queues: [queue] });
    await other.worker.start();
    const sender = createClient({ broker: setup.transport(), backend: plain });
    try {
      const here = <T extends { set(o: { queue: string }): T }>(sig: T): T => sig.set({ queue });
      const result = await sender.applyAsync(
        chord([here(s(add, 1, 1)), here(s(add, 2, 2)), here(s(mul, 3, 3))], here(s(total))),
      );
      expect(await result.get({ timeout: 15 })).toBe(15);
    } finally {
      await other.worker.stop();
      await sender.close();
    }
  });

  it("a chord part stored but not counted is logged as such, not requeued to run again", async () => {
    const native = setup.backend.chords!;
    const broken = {
      ...setup.backend,
      chords: {
        ...native,
        partReturn: () =>
          Promise.reject(
            new CeleryTsError("CONNECTION", "the backend is down", { retryable: true }),
          ),
      },
    };
    const logger = captureLogger();
    const queue = `${setup.queue}-uncounted`;
    const other = new Fixture(setup, tasks(), { backend: broken, queues: [queue], logger });
    await other.worker.start();
    try {
      const part = s(add, 1, 1).set({ queue });
      const result = await client.applyAsync(chord([part], s(total).set({ queue })));
      const partId = (result.parent as { results: readonly { id: string }[] }).results[0]!.id;
      const [error] = await waitUntil(
        () => logger.lines.filter((l) => l.level === "error").length > 0 && logger.lines,
        { timeoutMs: 10_000, what: "an error logged" },
      ).then((lines) => lines.filter((l) => l.level === "error"));
      expect(error!.message).toMatch(
        new RegExp(
          `canvas.add\\[${partId}\\] succeeded and its result is stored, but its chord part could not be counted`,
        ),
      );
      expect(await client.asyncResult(partId).get({ timeout: 10 })).toBe(2);
      expect(logger.text()).not.toMatch(/requeued|redelivered/);
    } finally {
      await other.worker.stop();
    }
  });

  it("refuses a chord without a result backend, or on one that cannot count it", async () => {
    const bare = createClient({ broker: setup.transport() });
    await expect(bare.applyAsync(chord([on(s(add, 1, 1))], on(s(total))))).rejects.toMatchObject({
      code: "NO_RESULT_BACKEND",
    });
    await bare.close();
    const rpcLike = createClient({
      broker: setup.transport(),
      backend: { ...setup.backend, noChords: "this backend does not support chords" },
    });
    await expect(rpcLike.applyAsync(chord([on(s(add, 1, 1))], on(s(total))))).rejects.toThrow(
      /does not support chords/,
    );
    await rpcLike.close();
  });

  it("a malformed canvas in a message fails the task instead of looping", async () => {
    const id = await fixture.send({
      task: "canvas.add",
      args: [1, 2],
      embed: {
        chain: [
          {
            task: "canvas.add",
            args: [],
            kwargs: {},
            options: {},
            subtask_type: "regen-of-something",
            immutable: false,
            chord_size: null,
          },
        ],
      },
    });
    const meta = await fixture.wait(id);
    expect(meta.status).toBe("FAILURE");
    expect(JSON.stringify(meta.result)).toMatch(/cannot apply a signature of type/);
  });

  /** A signature dict as Celery writes it, with these options. */
  const wireSig = (task: string, options: Record<string, unknown>, args: unknown[] = []) => ({
    task,
    args,
    kwargs: {},
    options: { queue: setup.queue, ...options },
    subtask_type: null,
    immutable: false,
    chord_size: null,
  });

  it("refuses, before running it, a task whose canvas has an option celery-ts cannot honour", async () => {
    const id = await fixture.send({
      task: "canvas.record",
      args: ["must not run"],
      embed: {
        chain: [wireSig("canvas.add", { serializer: "pickle" }, [1])],
        callbacks: [wireSig("canvas.record", { frobnicate: true })],
      },
    });
    const meta = await fixture.wait(id);
    expect(meta.status).toBe("FAILURE");
    expect(meta.result).toMatchObject({ exc_type: "InvalidTaskError" });
    expect(JSON.stringify(meta.result)).toMatch(
      /the signature of canvas\.(add|record) has the option (serializer|frobnicate)=.*which celery-ts cannot honour/,
    );
    expect(recorded).toEqual([]);
  });

  it("carries replaced_task_nesting and Celery 5.3's stamps of a chain step as its headers", async () => {
    const id = await fixture.send({
      task: "canvas.add",
      args: [1, 2],
      embed: {
        chain: [
          wireSig("canvas.headers", {
            replaced_task_nesting: 1,
            stamped_headers: ["monitor"],
            stamps: { monitor: "m-1" },
            monitor: "m-1",
          }),
        ],
      },
    });
    const meta = await fixture.wait(id);
    const [[[nextId]]] = meta.children as [[[string]]];
    expect((await fixture.wait(nextId)).result).toEqual({
      monitor: "m-1",
      stamped_headers: ["monitor"],
      replaced_task_nesting: 1,
    });
  });

  it("sends many calls at once", async () => {
    const results = await client.sendMany(Array.from({ length: 20 }, (_, i) => on(s(add, i, 1))));
    const values = await Promise.all(
      results.map((r) => (r as { get(o: object): Promise<unknown> }).get({ timeout: 10 })),
    );
    expect(values).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
