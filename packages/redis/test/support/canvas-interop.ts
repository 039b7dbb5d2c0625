import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chain, chord, chunks, group, s, si, type Client } from "@celery-ts/client";
import { declareTask, defineTask, type AnyTaskDefinition } from "@celery-ts/core";
import {
  runPythonCanvas,
  startPythonWorker,
  type PythonCanvasCommand,
  type PythonCeleryConfig,
  type PythonWorker,
} from "@celery-ts/testing";
import type { Worker } from "@celery-ts/worker";
import { afterAll, afterEach, describe, expect, it } from "vitest";

/** How a broker's canvas interop tests reach their servers (Redis alone, or RabbitMQ + Redis). */
export interface CanvasInteropHarness {
  /** The Python app's broker and result backend. */
  python: PythonCeleryConfig;
  /** A celery-ts client on the same broker and backend. */
  client(): Client;
  /** A celery-ts worker on the same broker and backend, consuming `queues`. */
  worker(queues: string[], tasks: AnyTaskDefinition[]): Worker;
  /** A unique queue name, cleaned up after the tests. */
  queue(label: string): string;
}

class ValueError extends Error {
  override name = "ValueError";
}

const tsAdd = declareTask<[number, number], number>("canvas.ts_add");
const tsSum = declareTask<[number[]], number>("canvas.ts_tsum");
const tsFail = declareTask<[string], never>("canvas.ts_fail");
const tsRecord = declareTask<[unknown], unknown>("canvas.ts_record");
const pyAdd = declareTask<[number, number], number>("canvas.py_add");
const pySum = declareTask<[number[]], number>("canvas.py_tsum");
const pyFail = declareTask<[string], never>("canvas.py_fail");

/** The canvas tests every broker runs against the real Python Celery, in both directions. */
export function describeCanvasInterop(name: string, harness: () => CanvasInteropHarness): void {
  describe(`canvas between Python Celery and celery-ts on ${name}`, () => {
    const dir = mkdtempSync(join(tmpdir(), "celery-ts-canvas-"));
    const log = join(dir, "canvas.log");
    const cleanups: (() => Promise<unknown>)[] = [];
    let h: CanvasInteropHarness;
    let pyQueue: string;
    let tsQueue: string;
    let client: Client;

    const records = (): { by: string; value: unknown }[] =>
      readFileSync(log, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { by: string; value: unknown });
    const tasks: AnyTaskDefinition[] = [
      defineTask(tsAdd, (a, b) => a + b),
      defineTask(tsSum, (values) => values.reduce((sum, v) => sum + v, 0)),
      defineTask(tsFail, (message) => {
        throw new ValueError(message);
      }),
      defineTask(tsRecord, (value) => {
        appendFileSync(log, `${JSON.stringify({ by: "ts", value })}\n`);
        return value;
      }),
    ];
    const py = (command: PythonCanvasCommand) =>
      runPythonCanvas({ ...h.python, env: { CANVAS_LOG: log } }, { pyQueue, tsQueue, ...command });
    // Each signature routed to the worker of its language.
    const onPy = <T extends { set(o: { queue: string }): T }>(sig: T): T =>
      sig.set({ queue: pyQueue });
    const onTs = <T extends { set(o: { queue: string }): T }>(sig: T): T =>
      sig.set({ queue: tsQueue });

    // Bounded, with room for a Python worker's warm shutdown on a loaded machine.
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    }, 60_000);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** A Python worker on one queue and a celery-ts worker on another, and a celery-ts client. */
    const fleet = async (): Promise<void> => {
      h = harness();
      writeFileSync(log, "");
      pyQueue = h.queue("canvas-py");
      tsQueue = h.queue("canvas-ts");
      const python: PythonWorker = await startPythonWorker({
        ...h.python,
        queues: [pyQueue],
        env: { CANVAS_LOG: log },
      });
      cleanups.push(async () => expect(await python.stop()).toBe(0));
      const worker = h.worker([tsQueue], tasks);
      await worker.start();
      cleanups.push(() => worker.stop());
      client = h.client();
      cleanups.push(() => client.close());
    };

    it("chains alternate between the languages, built in Python or in TypeScript", async () => {
      await fleet();
      const fromPython = await py({
        expr: "chain(py('add', 1, 2), ts('add', 3), py('add', 4))",
        parents: true,
      });
      expect(fromPython).toMatchObject({ result: 10, status: "SUCCESS" });
      expect(fromPython.parents).toHaveLength(2);
      expect(
        await py({ expr: "chain(ts('add', 1, 2), ts('add', 3), ts('add', 4))" }),
      ).toMatchObject({ result: 10 });

      const fromTs = await client.applyAsync(
        chain(onPy(s(pyAdd, 1, 2)), onTs(s(tsAdd, 3)), onPy(s(pyAdd, 4))),
      );
      expect(await fromTs.get({ timeout: 30 })).toBe(10);
      const middle = fromTs.parent as typeof fromTs;
      expect(await middle.get({ timeout: 5 })).toBe(6);
      // Python's worker stored the first step's child: the TypeScript step it sent.
      const first = middle.parent as typeof fromTs;
      expect((await first.children()).map((c) => c.id)).toEqual([middle.id]);
      const onlyPython = await client.applyAsync(
        chain(onPy(s(pyAdd, 1, 2)), onPy(s(pyAdd, 3)), onPy(si(pyAdd, 5, 5))),
      );
      expect(await onlyPython.get({ timeout: 30 })).toBe(10);
    }, 120_000);

    it("chords of ten count their parts on both sides: header in one language, body in the other, or mixed", async () => {
      await fleet();
      const range = Array.from({ length: 10 }, (_, i) => i);
      expect(
        await py({ expr: `chord([py('add', i, i) for i in range(10)], ts('tsum'))` }),
      ).toMatchObject({ result: 90 });
      expect(
        await py({
          expr: `chord([(py if i % 2 else ts)('add', i, 1) for i in range(10)], py('tsum'))`,
        }),
      ).toMatchObject({ result: 55 });

      const tsHeader = await client.applyAsync(
        chord(
          range.map((i) => onTs(s(tsAdd, i, i))),
          onPy(s(pySum)),
        ),
      );
      expect(await tsHeader.get({ timeout: 30 })).toBe(90);
      const mixed = await client.applyAsync(
        chord(
          range.map((i) => (i % 2 ? onPy(s(pyAdd, i, 1)) : onTs(s(tsAdd, i, 1)))),
          onTs(s(tsSum)),
        ),
      );
      expect(await mixed.get({ timeout: 30 })).toBe(55);
      // A group followed by a step is a chord, in Celery and here.
      const upgraded = await client.applyAsync(
        chain(
          group(...range.slice(0, 4).map((i) => onPy(s(pyAdd, i, i)))),
          onTs(s(tsSum)),
          onPy(s(pyAdd, 100)),
        ),
      );
      expect(await upgraded.get({ timeout: 30 })).toBe(112);
    }, 150_000);

    it("link and link_error run across languages; a failed chain fails its later steps", async () => {
      await fleet();
      expect(await py({ expr: "ts('add', 2, 2, link=py('record'))" })).toMatchObject({ result: 4 });
      const failed = await py({ expr: "ts('fail', 'nope', link_error=py('record'))" });
      expect(failed).toMatchObject({ exc_type: "ValueError", exc_message: "nope" });
      const chained = await py({ expr: "chain(ts('fail', 'early'), py('add', 1))" });
      expect(chained).toMatchObject({ exc_type: "ValueError", exc_message: "early" });

      const linked = await client.applyAsync(onPy(s(pyAdd, 3, 3)).link(onTs(s(tsRecord))));
      expect(await linked.get({ timeout: 30 })).toBe(6);
      const broken = await client.applyAsync(
        onPy(s(pyFail, "py broke")).linkError(onTs(s(tsRecord))),
      );
      expect(await broken.get({ timeout: 30, propagate: false })).toMatchObject({
        excType: "ValueError",
      });
      await expect
        .poll(() => records(), { timeout: 20_000 })
        .toEqual(
          expect.arrayContaining([
            { by: "python", value: 4 },
            { by: "python", value: failed.id },
            { by: "ts", value: 6 },
            { by: "ts", value: broken.id },
          ]),
        );
    }, 120_000);

    it("a chord part failing fails the body with Celery's ChordError on both sides", async () => {
      await fleet();
      const fromPython = await py({
        expr: "chord([py('add', 1, 1), ts('fail', 'part')], py('tsum'))",
      });
      // Python's get() raises the failed header part's error first (it checks the parents)...
      expect(fromPython).toMatchObject({ exc_type: "ValueError", exc_message: "part" });
      // ...and the body itself is stored as Celery's ChordError, by whichever side counted last.
      const body = await client.asyncResult(fromPython.id).get({ timeout: 30, propagate: false });
      expect(body).toMatchObject({ excType: "ChordError", excModule: "celery.exceptions" });
      expect((body as Error).message).toMatch(/raised ValueError\('part'\)/);
      const fromTs = await client.applyAsync(
        chord([onTs(s(tsAdd, 1, 1)), onPy(s(pyFail, "part"))], onTs(s(tsSum))),
      );
      const error = await fromTs.get({ timeout: 30, propagate: false });
      expect(error).toMatchObject({ excType: "ChordError", excModule: "celery.exceptions" });
    }, 120_000);

    it("a TypeScript worker runs Celery's celery.chord_unlock fallback that Python sends", async () => {
      await fleet();
      // What Python sends for a chord when its backend has no chord counter (e.g. a database
      // backend): the header, then celery.chord_unlock(group_id, body, result=[...]) polling it.
      const unlocked = await py({
        script: [
          "header = group(py('add', 1, 1), ts('add', 2, 2)).apply_async()",
          "body = ts('tsum')",
          "result = body.freeze()",
          "app.backend.fallback_chord_unlock(header, body, countdown=1)",
        ].join("\n"),
      });
      expect(unlocked).toMatchObject({ result: 6 });
    }, 120_000);

    it("groups are saved and restored in Celery's layout; chunks run on either side", async () => {
      await fleet();
      const saved = await client.applyAsync(group(onPy(s(pyAdd, 1, 1)), onTs(s(tsAdd, 2, 2))));
      await saved.save();
      expect(await py({ restore: saved.id })).toEqual({
        ids: saved.results.map((r) => r.id),
        result: [2, 4],
      });
      const fromPython = await py({ expr: "group(py('add', 5, 5), ts('add', 6, 6))", save: true });
      const restored = await client.restoreGroup<[number, number]>(fromPython.id);
      expect(await restored?.get({ timeout: 30 })).toEqual([10, 12]);

      const pairs = Array.from({ length: 5 }, (_, i): [number, number] => [i, i]);
      expect(
        await py({
          expr: `chunks(signature('canvas.ts_add'), ${JSON.stringify(pairs)}, 2)`,
          apply_options: { queue: tsQueue },
        }),
      ).toMatchObject({ result: [[0, 2], [4, 6], [8]] });
      const chunked = await client.applyAsync(chunks(pyAdd, pairs, 2).set({ queue: pyQueue }));
      expect(await chunked.get({ timeout: 30 })).toEqual([[0, 2], [4, 6], [8]]);
    }, 120_000);
  });
}
