import { randomUUID } from "node:crypto";
import {
  createTaskMessage,
  defineTask,
  encodeTaskMessage,
  type DeadLetter,
  type Logger,
  type WireMessage,
} from "@celery-ts/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Fixture, setups, sleep, type Setup } from "./harness.ts";

// A flood of malformed messages mixed into a normal batch, on every transport the worker runs on:
// the worker keeps running, dead-letters each bad message with a logged reason (kept where an
// operator finds it: the transport's dead letters), and every good task still completes.

const BAD = 10_000;
const GOOD = 300;
const MAX_BODY_BYTES = 4096;
/** Generous for a shared 2-core machine; the flood takes a few seconds on either transport. */
const TEST_TIMEOUT_MS = 120_000;
const WAIT_MS = 90_000;

interface Line {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown> | undefined;
}

function recordingLogger(lines: Line[]): Logger {
  const at =
    (level: Line["level"]) =>
    (message: string, fields?: Record<string, unknown>): void => {
      lines.push({ level, message, fields });
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

type Kind =
  | "envelope not JSON"
  | "body not base64"
  | "body not JSON"
  | "wrong types"
  | "missing header"
  | "unknown task"
  | "unsupported content type"
  | "oversized body";

const KINDS: readonly Kind[] = [
  "envelope not JSON",
  "body not base64",
  "body not JSON",
  "wrong types",
  "missing header",
  "unknown task",
  "unsupported content type",
  "oversized body",
];

/**
 * One bad message. Its tag (`<bad#n>`) is somewhere in what the broker stores, so a dead letter can
 * be traced back to the message it came from (no UUID, base64 or header value contains `<bad#`).
 */
interface Bad {
  tag: string;
  kind: Kind;
  /** What the worker must give as the reason, in the dead letter and the log. */
  reason: RegExp;
  /** A broken envelope, stored as is; or an envelope-valid message, published. */
  send: { raw: string } | { wire: WireMessage };
}

const GOOD_TASK = "flood.double";

/** An envelope-valid message for the good task, carrying the bad message's tag in a header. */
function validWire(tag: string): WireMessage {
  return encodeTaskMessage(
    createTaskMessage({ task: GOOD_TASK, args: [1], headers: { "x-flood": tag } }),
  );
}

function withHeaders(wire: WireMessage, change: (headers: Record<string, unknown>) => void) {
  const headers = { ...wire.headers };
  change(headers);
  return { ...wire, headers };
}

/** The n-th bad message: the kinds take turns, and each cycles through its variants. */
function badMessage(n: number): Bad {
  const tag = `<bad#${n}>`;
  const kind = KINDS[n % KINDS.length]!;
  const variant = Math.floor(n / KINDS.length);
  const wire = validWire(tag);
  const pick = <T>(options: readonly T[]): T => options[variant % options.length]!;
  switch (kind) {
    case "envelope not JSON":
      return {
        tag,
        kind,
        reason: /malformed message envelope: not JSON \(/,
        send: {
          raw: pick([
            `{"body": "${tag}", "headers": {`,
            `${tag}: this is not an envelope`,
            `{'body': '${tag}', 'content-type': 'application/json'}`,
            `<message id="${tag}"/>`,
          ]),
        },
      };
    case "body not base64":
      return {
        tag,
        kind,
        reason: /malformed message envelope: 'body' is not valid base64$/,
        send: {
          raw: JSON.stringify({
            body: pick([`*** ${tag} ***`, `${tag}!`, `<${tag}>`]),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            headers: { "x-flood": tag },
            properties: { body_encoding: "base64", delivery_tag: randomUUID(), priority: 0 },
          }),
        },
      };
    case "body not JSON":
      return {
        tag,
        kind,
        reason: /malformed task message: body is not valid JSON \(/,
        send: { wire: { ...wire, body: pick(["{not json", "[[1, 2], {}", "", "[[], {}, {},]"]) } },
      };
    case "wrong types": {
      const [body, headers, reason] = pick<[string | null, Record<string, unknown>, RegExp]>([
        ['["a, b", {}, null]', {}, /args \(body\[0\]\) is not an array/],
        ["[[], [1, 2], null]", {}, /kwargs \(body\[1\]\) is not an object/],
        [null, { retries: "x" }, /header 'retries' is not a non-negative integer/],
        [null, { timelimit: "10" }, /header 'timelimit' is not \[hard, soft\] seconds/],
        [null, { timelimit: [10] }, /header 'timelimit' is not \[hard, soft\] seconds/],
        [null, { timelimit: [-1, null] }, /header 'timelimit' is not \[hard, soft\] seconds/],
      ]);
      return {
        tag,
        kind,
        reason,
        send: {
          wire: { ...withHeaders(wire, (h) => Object.assign(h, headers)), body: body ?? wire.body },
        },
      };
    }
    case "missing header": {
      const missing = pick(["task", "id"]);
      return {
        tag,
        kind,
        reason: new RegExp(
          `malformed task message: header '${missing}' is missing or not a string`,
        ),
        send: { wire: withHeaders(wire, (h) => delete h[missing]) },
      };
    }
    case "unknown task":
      return {
        tag,
        kind,
        reason: new RegExp(
          `^unknown task "flood\\.unknown\\.${n}": this worker registers ${GOOD_TASK}$`,
        ),
        send: { wire: withHeaders(wire, (h) => (h.task = `flood.unknown.${n}`)) },
      };
    case "unsupported content type": {
      const [contentType, body] = pick([
        ["application/x-python-serialize", "\u0080\u0004\u0095 cos\nsystem\n(S'echo pwned'\ntR."],
        ["application/x-yaml", "- [1]\n- {}\n- null\n"],
        ["application/x-msgpack", "\u0093\u0091\u0001\u0080\u00c0"],
      ] as const);
      return {
        tag,
        kind,
        reason: new RegExp(`content type "${contentType.replace("/", "\\/")}" is not accepted`),
        send: { wire: { ...wire, contentType, body } },
      };
    }
    case "oversized body": {
      const body = JSON.stringify([["x".repeat(4_990 + (variant % 20))], {}, null]);
      return {
        tag,
        kind,
        reason: new RegExp(
          `malformed task message: body is ${Buffer.byteLength(body)} bytes, ` +
            `over the ${MAX_BODY_BYTES}-byte limit$`,
        ),
        send: { wire: { ...wire, body } },
      };
    }
  }
}

/** A deterministic shuffle (mulberry32), so a failing order can be replayed. */
function shuffle<T>(items: T[], seed: number): T[] {
  let state = seed;
  const random = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** The number in the tag of the message a dead letter holds, or NaN. */
const tagOf = (letter: DeadLetter): number => Number(/<bad#(\d+)>/.exec(letter.raw)?.[1] ?? NaN);

async function waitForDeadLetters(f: Fixture, count: number): Promise<DeadLetter[]> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const dead = (await f.producer.deadLetters?.(f.queue)) ?? [];
    if (dead.length >= count || Date.now() > deadline) return dead;
    await sleep(50);
  }
}

const tally = (values: readonly string[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
};

describe.each(setups)("a flood of malformed messages on $name", ({ create }) => {
  let setup: Setup;
  let fixture: Fixture | undefined;
  beforeEach(async () => {
    setup = await create();
  });
  afterEach(async () => {
    await fixture?.worker.stop();
    fixture = undefined;
    await setup.close();
  });

  it(
    `rejects ${BAD} bad messages with logged reasons, keeps them, and runs every good task`,
    async () => {
      const lines: Line[] = [];
      const double = defineTask(GOOD_TASK, (n: number) => n * 2);
      const f = new Fixture(setup, [double], {
        concurrency: 100,
        prefetch: 500,
        maxBodyBytes: MAX_BODY_BYTES,
        logger: recordingLogger(lines),
      });
      fixture = f;
      let stopped = false;
      void f.worker.stopped.then(() => (stopped = true));
      await f.worker.start();

      const bad = Array.from({ length: BAD }, (_, n) => badMessage(n));
      const good = Array.from({ length: GOOD }, (_, n) =>
        createTaskMessage({ task: GOOD_TASK, args: [n] }),
      );
      const order = shuffle<{ bad: Bad } | { good: number }>(
        [...bad.map((b) => ({ bad: b })), ...good.map((_, n) => ({ good: n }))],
        20_240_601,
      );

      const started = performance.now();
      for (const [index, item] of order.entries()) {
        if ("good" in item) {
          await f.producer.publish(encodeTaskMessage(good[item.good]!), { queue: f.queue });
        } else if ("raw" in item.bad.send) {
          await setup.injectRaw(f.queue, item.bad.send.raw);
        } else {
          await f.producer.publish(item.bad.send.wire, { queue: f.queue });
        }
        // Let the worker consume while the flood is still coming in.
        if (index % 250 === 0) await new Promise((resolve) => setImmediate(resolve));
      }

      const results = await Promise.all(
        good.map((message) =>
          setup.backend.waitFor(message.headers.id, { timeout: WAIT_MS / 1000 }),
        ),
      );
      const dead = await waitForDeadLetters(f, BAD);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.info(`[${setup.name}] ${BAD} bad + ${GOOD} good messages handled in ${seconds} s`);

      // Every good task ran, once, with its own arguments.
      expect(results.map((meta) => [meta.status, meta.result])).toEqual(
        good.map((_, n) => ["SUCCESS", n * 2]),
      );

      // Every bad message is a dead letter, once, with the reason for its kind.
      expect(dead).toHaveLength(BAD);
      const seen = new Set<number>();
      const wrong: string[] = [];
      for (const letter of dead) {
        const n = tagOf(letter);
        const expected = bad[n];
        if (!expected || seen.has(n)) {
          wrong.push(`unexpected or duplicate dead letter: ${letter.raw.slice(0, 200)}`);
          continue;
        }
        seen.add(n);
        if (letter.queue !== f.queue) wrong.push(`${expected.tag}: queue ${letter.queue}`);
        if (!expected.reason.test(letter.reason)) {
          wrong.push(`${expected.tag} (${expected.kind}): reason ${JSON.stringify(letter.reason)}`);
        }
        // Broken envelopes are kept byte for byte, for an operator to inspect.
        if ("raw" in expected.send && letter.raw !== expected.send.raw) {
          wrong.push(`${expected.tag}: stored as ${JSON.stringify(letter.raw.slice(0, 200))}`);
        }
      }
      expect(wrong.slice(0, 20)).toEqual([]);
      expect(seen.size).toBe(BAD);
      expect(tally(dead.map((letter) => bad[tagOf(letter)]?.kind ?? "none"))).toEqual(
        Object.fromEntries(KINDS.map((kind) => [kind, BAD / KINDS.length])),
      );
      // The reasons say what is wrong in words an operator can act on.
      const phrases = [
        /not JSON/,
        /not valid base64/,
        /not valid JSON/,
        /is not an array/,
        /is not an object/,
        /'retries'/,
        /'timelimit'/,
        /'task' is missing/,
        /'id' is missing/,
        /unknown task/,
        /"application\/x-python-serialize" is not accepted/,
        /"application\/x-yaml" is not accepted/,
        /"application\/x-msgpack" is not accepted/,
        /over the 4096-byte limit/,
      ];
      for (const phrase of phrases) {
        expect(
          dead.some((letter) => phrase.test(letter.reason)),
          String(phrase),
        ).toBe(true);
      }

      // One error line per bad message, giving the same reason; no other warnings or errors.
      const problems = lines.filter((line) => line.level === "error" || line.level === "warn");
      expect(problems).toHaveLength(BAD);
      const prefix = "rejected message: ";
      expect(problems.filter((line) => !line.message.startsWith(prefix)).slice(0, 5)).toEqual([]);
      expect(
        problems.every((line) => line.level === "error" && line.fields?.queue === f.queue),
      ).toBe(true);
      expect(problems.map((line) => line.message.slice(prefix.length)).sort()).toEqual(
        dead.map((letter) => letter.reason).sort(),
      );
      expect(lines.filter((line) => line.message === "task succeeded")).toHaveLength(GOOD);

      // The worker is still running and still takes work.
      expect(stopped).toBe(false);
      const after = await f.send({ task: GOOD_TASK, args: [21] });
      expect(await f.wait(after)).toMatchObject({ status: "SUCCESS", result: 42 });
      expect(stopped).toBe(false);
    },
    TEST_TIMEOUT_MS,
  );
});
