import { readFileSync } from "node:fs";
import {
  declareTask,
  decodeEnvelope,
  defineTask,
  formatCeleryDate,
  isCeleryTsError,
  parseCeleryDate,
  runWithTaskContext,
  type TaskContext,
} from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { setup } from "./support.ts";

const add = declareTask<[number, number], number>("tasks.add");

const pythonFixture = (name: string): string =>
  readFileSync(new URL(`../../core/test/fixtures/${name}`, import.meta.url), "utf8");

const seconds = (date: string | null): number =>
  date === null ? NaN : parseCeleryDate(date).getTime();

describe("the message a send puts on the broker", () => {
  it("delay() sends Celery's protocol v2 layout to the default queue", async () => {
    const { client, next } = setup();
    const result = await client.task(add).delay(2, 3);
    const { queue, message } = next();
    expect(queue).toBe("celery");
    expect(message.args).toEqual([2, 3]);
    expect(message.kwargs).toEqual({});
    expect(message.embed).toEqual({ callbacks: null, errbacks: null, chain: null, chord: null });
    expect(message.headers).toMatchObject({
      lang: "py",
      task: "tasks.add",
      id: result.id,
      root_id: result.id,
      parent_id: null,
      eta: null,
      expires: null,
      retries: 0,
      timelimit: [null, null],
      argsrepr: "(2, 3)",
      kwargsrepr: "{}",
      ignore_result: false,
    });
    expect(message.properties).toMatchObject({ correlation_id: result.id, delivery_mode: 2 });
    expect(message.properties.expiration).toBeUndefined();
    expect(result.name).toBe("tasks.add");
  });

  it("uses one reply_to per client, as Celery uses its app's oid", async () => {
    const { client, next } = setup();
    await client.task(add).delay(1, 1);
    await client.task(add).delay(2, 2);
    const first = next().message.properties.reply_to;
    expect(first).toMatch(/^[0-9a-f-]{36}$/);
    expect(next().message.properties.reply_to).toBe(first);

    const other = setup();
    await other.client.task(add).delay(1, 1);
    expect(other.next().message.properties.reply_to).not.toBe(first);
  });

  it("applyAsync() carries every option, in Celery's units (seconds)", async () => {
    const { client, next } = setup();
    const before = Date.now();
    const result = await client.task(add).applyAsync([2, 3], {
      taskId: "0b4c2c8e-4a8e-4a43-9a35-3f4b3c1d7e01",
      countdown: 10,
      expires: 60,
      priority: 5,
      queue: "math",
      kwargs: { verbose: true },
      headers: { "x-trace-id": "abc" },
      timeLimit: { soft: 5, hard: 10 },
      shadow: "add(2, 3)",
      retries: 2,
      ignoreResult: true,
    });
    const after = Date.now();
    expect(result.id).toBe("0b4c2c8e-4a8e-4a43-9a35-3f4b3c1d7e01");

    const { queue, priority, availableAt, message } = next("math");
    expect(queue).toBe("math");
    const { headers, properties } = message;
    expect(headers.id).toBe(result.id);
    expect(properties.correlation_id).toBe(result.id);
    expect(message.kwargs).toEqual({ verbose: true });
    expect(headers.kwargsrepr).toBe("{'verbose': True}");

    expect(seconds(headers.eta)).toBeGreaterThanOrEqual(before + 10_000);
    expect(seconds(headers.eta)).toBeLessThanOrEqual(after + 10_000);
    expect(availableAt).toBe(seconds(headers.eta));

    expect(seconds(headers.expires)).toBeGreaterThanOrEqual(before + 60_000);
    expect(seconds(headers.expires)).toBeLessThanOrEqual(after + 60_000);
    const expiration = Number(properties.expiration);
    expect(expiration).toBeGreaterThan(59_000);
    expect(expiration).toBeLessThanOrEqual(60_000);

    expect(properties.priority).toBe(5);
    expect(priority).toBe(5);
    // [hard, soft]: the order Celery writes and its worker reads (celery/app/amqp.py).
    expect(headers.timelimit).toEqual([10, 5]);
    expect(headers["x-trace-id"]).toBe("abc");
    expect(headers.shadow).toBe("add(2, 3)");
    expect(headers.retries).toBe(2);
    expect(headers.ignore_result).toBe(true);
  });

  it("takes eta and expires as Dates", async () => {
    const { client, next } = setup();
    const eta = new Date(Date.now() + 3_600_000);
    const expires = new Date(Date.now() + 7_200_000);
    await client.task(add).applyAsync([1, 2], { eta, expires });
    const { availableAt, message } = next();
    expect(message.headers.eta).toBe(formatCeleryDate(eta));
    expect(message.headers.expires).toBe(formatCeleryDate(expires));
    expect(availableAt).toBe(eta.getTime());
  });

  it("takes its defaults from the declaration, and call options over them", async () => {
    const { client, next } = setup();
    const report = declareTask<[string], string>("reports.build", {
      queue: "reports",
      priority: 2,
      expires: 30,
      timeLimit: { hard: 60 },
      ignoreResult: true,
    });
    const before = Date.now();
    await client.task(report).delay("q3");
    const { message } = next("reports");
    expect(message.properties.priority).toBe(2);
    expect(seconds(message.headers.expires)).toBeGreaterThanOrEqual(before + 30_000);
    expect(message.headers.timelimit).toEqual([60, null]);
    expect(message.headers.ignore_result).toBe(true);

    await client.task(report).applyAsync(["q4"], {
      queue: "urgent",
      priority: 9,
      ignoreResult: false,
      timeLimit: { soft: 1 },
    });
    const override = next("urgent").message;
    expect(override.properties.priority).toBe(9);
    expect(override.headers.ignore_result).toBe(false);
    expect(override.headers.timelimit).toEqual([null, 1]);
  });

  it("binds a task definition (defineTask) as well as a declaration", async () => {
    const { client, next } = setup();
    const multiply = defineTask("tasks.multiply", (a: number, b: number) => a * b, {
      queue: "math",
    });
    await client.task(multiply).delay(6, 7);
    expect(next("math").message.args).toEqual([6, 7]);
  });

  it("sendTask() sends by name what Python's send_task sends, byte for byte in the body", async () => {
    const { client, next } = setup();
    const result = await client.sendTask<number>("tasks.add", { args: [2], kwargs: { b: 5 } });
    const ours = next();
    const python = decodeEnvelope(pythonFixture("redis-queue-message-kwargs.json")).message;

    expect(decodeEnvelope(ours.raw).message.body).toBe(python.body);
    expect(Object.keys(ours.message.headers)).toEqual(Object.keys(python.headers));
    const perSend = ["id", "root_id", "origin"];
    const strip = (headers: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(headers).filter(([key]) => !perSend.includes(key)));
    expect(strip(ours.message.headers)).toEqual(strip(python.headers));
    expect(ours.message.headers.root_id).toBe(result.id);
    expect(result.name).toBe("tasks.add");
  });

  it("sendTask() with a number for expires sets the header and the expiration property", async () => {
    const { client, next } = setup();
    const before = Date.now();
    await client.sendTask("tasks.add", { args: [2, 3], expires: 600, countdown: 10, priority: 3 });
    const { message } = next();
    expect(seconds(message.headers.expires)).toBeGreaterThanOrEqual(before + 600_000);
    expect(Number(message.properties.expiration)).toBeGreaterThan(599_000);
    expect(message.properties.priority).toBe(3);
    expect(message.headers.argsrepr).toBe("(2, 3)");
  });

  it("makes a task sent from inside another task its child", async () => {
    const { client, next } = setup();
    const parent: TaskContext = {
      id: "parent-id",
      name: "tasks.parent",
      retries: 0,
      args: [],
      kwargs: {},
      rootId: "root-id",
      parentId: null,
      headers: {},
      queue: "celery",
      signal: new AbortController().signal,
      retry: () => {
        throw new Error("not used");
      },
      updateState: async () => {},
    };
    const child = await runWithTaskContext(parent, () => client.task(add).delay(1, 2));
    const { headers } = next().message;
    expect(headers.id).toBe(child.id);
    expect(headers.parent_id).toBe("parent-id");
    expect(headers.root_id).toBe("root-id");
  });

  it("sends without a result backend", async () => {
    const { client, next } = setup({ backend: false });
    const result = await client.task(add).delay(2, 3);
    expect(next().message.headers.id).toBe(result.id);
  });
});

describe("options that cannot be sent", () => {
  const rejected = [
    [
      "countdown and eta together",
      { countdown: 10, eta: new Date() },
      /either countdown .* or eta/,
    ],
    ["a priority above 9", { priority: 12 }, /priority must be an integer from 0 to 9, got 12/],
    ["a fractional priority", { priority: 1.5 }, /priority must be an integer/],
    ["a countdown that is not a number", { countdown: Number.NaN }, /countdown must be a number/],
    [
      "an invalid eta",
      { eta: new Date("nope") },
      /eta must be a number of seconds or a valid Date/,
    ],
  ] as const;

  it.each(rejected)("%s is a CONFIG error and sends nothing", async (_case, options, message) => {
    const { client, broker } = setup();
    const error: unknown = await client
      .task(add)
      .applyAsync([1, 2], options)
      .catch((e) => e);
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/^\[celery-ts:client\] task tasks\.add: /);
    expect(broker.take(["celery"], Infinity)).toBeUndefined();
  });

  it("a value JSON cannot carry is an ENCODE error", async () => {
    const { client } = setup();
    await expect(client.task(add).delay(1, Number.NaN)).rejects.toMatchObject({ code: "ENCODE" });
  });
});
