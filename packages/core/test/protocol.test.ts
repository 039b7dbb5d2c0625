import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  createTaskMessage,
  decodeEnvelope,
  decodeTaskMessage,
  encodeEnvelope,
  encodeJson,
  encodeTaskMessage,
  isCeleryTsError,
  type WireMessage,
} from "../src/index.ts";

const fixture = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8").trim();

describe("golden fixtures captured from Python Celery 5.2.6", () => {
  for (const name of [
    "redis-queue-message-kwargs.json",
    "redis-queue-message-priority3-countdown-expires.json",
  ]) {
    it(`decodes and re-encodes ${name} byte for byte`, () => {
      const raw = fixture(name);
      const { message: wire, deliveryTag } = decodeEnvelope(raw);
      const message = decodeTaskMessage(wire);
      const properties = JSON.parse(raw).properties;
      const again = encodeEnvelope(encodeTaskMessage(message), {
        exchange: properties.delivery_info.exchange,
        routingKey: properties.delivery_info.routing_key,
        priority: properties.priority,
        deliveryTag: deliveryTag!,
      });
      expect(again).toBe(raw);
    });
  }

  it("reads the task, arguments and dates a Python client sent", () => {
    const message = decodeTaskMessage(
      decodeEnvelope(fixture("redis-queue-message-priority3-countdown-expires.json")).message,
    );
    expect(message.headers.task).toBe("tasks.add");
    expect(message.args).toEqual([2, 3]);
    expect(message.kwargs).toEqual({});
    expect(message.headers.eta).toBe("2026-11-24T23:19:52.348686+00:00");
    expect(message.properties.priority).toBe(3);
    expect(message.embed).toEqual({ callbacks: null, errbacks: null, chain: null, chord: null });
  });

  it("writes results in Celery's layout byte for byte", () => {
    for (const name of ["redis-result-success.json", "redis-result-failure.json"]) {
      const raw = fixture(name);
      expect(encodeJson(JSON.parse(raw))).toBe(raw);
    }
  });
});

describe("createTaskMessage", () => {
  it("sends every header Celery 5 sends, in Celery's order", () => {
    const eta = new Date(Date.now() + 10_000);
    const message = createTaskMessage({
      task: "tasks.add",
      args: [2],
      kwargs: { b: 5 },
      eta,
      priority: 3,
      replyTo: "reply",
    });
    expect(Object.keys(message.headers)).toEqual(
      Object.keys(JSON.parse(fixture("redis-queue-message-kwargs.json")).headers),
    );
    expect(message.headers.argsrepr).toBe("(2,)");
    expect(message.headers.kwargsrepr).toBe("{'b': 5}");
    expect(message.headers.eta).toBe(eta.toISOString().replace("Z", "000+00:00"));
    expect(message.headers.root_id).toBe(message.headers.id);
    expect(message.properties).toEqual({
      correlation_id: message.headers.id,
      reply_to: "reply",
      delivery_mode: 2,
      priority: 3,
    });
  });

  it("sets the AMQP expiration property with expires", () => {
    const message = createTaskMessage({ task: "t", expires: new Date(Date.now() + 60_000) });
    expect(Number(message.properties.expiration)).toBeGreaterThan(59_000);
  });
});

describe("decodeTaskMessage rejects bad input with a reason", () => {
  const good = encodeTaskMessage(createTaskMessage({ task: "tasks.add", args: [1, 2] }));
  const cases: [string, Partial<WireMessage>, RegExp][] = [
    ["bad JSON", { body: "[[1, 2], {}" }, /not valid JSON/],
    ["a body that is not a list", { body: '{"a": 1}' }, /\[args, kwargs, embed\]/],
    ["args that are not a list", { body: "[1, {}, {}]" }, /args/],
    ["kwargs that are not an object", { body: "[[], [], {}]" }, /kwargs/],
    ["a missing task header", { headers: { ...good.headers, task: undefined } }, /'task'/],
    ["a missing id", { headers: { ...good.headers, id: 7 } }, /'id'/],
    ["negative retries", { headers: { ...good.headers, retries: -1 } }, /'retries'/],
    ["a bad eta", { headers: { ...good.headers, eta: "tomorrow" } }, /'eta'/],
    ["a bad timelimit", { headers: { ...good.headers, timelimit: [1] } }, /'timelimit'/],
    [
      "an infinite timelimit",
      { headers: { ...good.headers, timelimit: [Infinity, null] } },
      /'timelimit'/,
    ],
    [
      "an unknown type marker",
      { body: '[[{"__type__": "pickle", "__value__": 1}], {}, {}]' },
      /__type__/,
    ],
    ["a non-utf-8 encoding", { contentEncoding: "latin-1" }, /utf-8/],
  ];
  for (const [what, change, reason] of cases) {
    it(`rejects ${what}`, () => {
      let error: unknown;
      try {
        decodeTaskMessage({ ...good, ...change });
      } catch (e) {
        error = e;
      }
      expect(isCeleryTsError(error, "MALFORMED_MESSAGE")).toBe(true);
      expect((error as Error).message).toMatch(reason);
    });
  }

  it("refuses pickle and other code-carrying content types", () => {
    expect(() =>
      decodeTaskMessage({ ...good, contentType: "application/x-python-serialize" }),
    ).toThrow(/not accepted.*application\/json/);
  });

  it("rejects a body over the size limit", () => {
    const big = encodeTaskMessage(createTaskMessage({ task: "t", args: ["x".repeat(2_000)] }));
    expect(() => decodeTaskMessage(big, { maxBodyBytes: 1_000 })).toThrow(
      /over the 1000-byte limit/,
    );
  });

  it("keeps unknown headers from newer Celery versions", () => {
    const wire = { ...good, headers: { ...good.headers, stamped_headers: ["a"], stamps: {} } };
    expect(decodeTaskMessage(wire).headers.stamped_headers).toEqual(["a"]);
  });

  it("decodes a legacy protocol v1 message", () => {
    const v1: WireMessage = {
      ...good,
      headers: {},
      body: '{"task": "tasks.add", "id": "abc", "args": [1], "kwargs": {"b": 2}, "retries": 1}',
    };
    const message = decodeTaskMessage(v1);
    expect(message.headers).toMatchObject({ task: "tasks.add", id: "abc", retries: 1 });
    expect(message.args).toEqual([1]);
    expect(message.kwargs).toEqual({ b: 2 });
  });

  it("reads kombu 5.3 type markers", () => {
    const body =
      '[[{"__type__": "datetime", "__value__": "2026-01-02T03:04:05+00:00"}, ' +
      '{"__type__": "uuid", "__value__": {"hex": "a7f682ed3a244118bc65518f4eec0f86", "version": 4}}, ' +
      '{"__type__": "decimal", "__value__": "1.10"}], {}, {}]';
    const [when, uuid, decimal] = decodeTaskMessage({ ...good, body }).args;
    expect(when).toEqual(new Date("2026-01-02T03:04:05Z"));
    expect(uuid).toBe("a7f682ed-3a24-4118-bc65-518f4eec0f86");
    expect(decimal).toBe("1.10");
  });
});

describe("decodeEnvelope", () => {
  it.each([
    ["not JSON", "{nope"],
    ["a list", "[]"],
    ["no body", '{"headers": {}}'],
    ["bad base64", '{"body": "!!", "properties": {"body_encoding": "base64"}}'],
  ])("rejects %s as malformed", (_what, raw) => {
    expect(() => decodeEnvelope(raw)).toThrow(/malformed message envelope/);
  });
});

describe("encodeEnvelope", () => {
  it("writes the body's UTF-8 in base64, small or big, one body after another", () => {
    const route = { exchange: "x", routingKey: "k", priority: 0, deliveryTag: "t" };
    // Small and big bodies in turn (the encoder reuses a buffer): non-ASCII, astral and lone
    // surrogates included, and one beyond what the reused buffer holds.
    const bodies = [
      "é".repeat(10),
      `[${'{"a": "ü€𝄞"}, '.repeat(4000)}1]`,
      "x",
      "\ud800 lone",
      "y".repeat(600_000),
      "",
    ];
    for (const body of bodies) {
      const wire: WireMessage = {
        body,
        contentType: "application/json",
        contentEncoding: "utf-8",
        headers: {},
        properties: {},
      };
      const raw = encodeEnvelope(wire, route);
      const { body: base64 } = JSON.parse(raw) as { body: string };
      expect(base64).toBe(Buffer.from(body, "utf8").toString("base64"));
      expect(decodeEnvelope(raw).message.body).toBe(Buffer.from(body, "utf8").toString("utf8"));
    }
  });
});
