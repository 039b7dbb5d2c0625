// The web app on its own (Fastify's inject, an in-memory broker, no Python): what it sends, what
// it answers, and how it reads a result. A stand-in worker plays the Python worker's part;
// test/interop.test.ts runs the real one.
import { createClient, type Client } from "@celery-ts/client";
import { defineTask } from "@celery-ts/core";
import { createWorker, type Worker } from "@celery-ts/worker";
import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp, describeStatus } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { PYTHON_QUEUE, thumbnailSize, wordCount } from "../src/python-tasks.ts";
import { ValueError } from "../src/tasks.ts";

let url: string;
let client: Client;
let app: FastifyInstance;
let worker: Worker | undefined;
let n = 0;

beforeEach(async () => {
  url = `memory://python-interop-app-${++n}`;
  client = createClient({ broker: url, backend: url });
  app = await buildApp({ client });
});

afterEach(async () => {
  await app.close();
  await worker?.stop();
  worker = undefined;
  await client.close();
});

/** Stand-ins for the Python tasks, on the Python worker's queue, recording what they were sent. */
function startStandInWorker(calls: unknown[][]): Promise<void> {
  worker = createWorker({
    broker: url,
    backend: url,
    queues: [PYTHON_QUEUE],
    tasks: [
      defineTask(wordCount, (text) => {
        calls.push([wordCount.name, text]);
        return text.split(/\s+/).length;
      }),
      defineTask(thumbnailSize, (width, height, maxSide) => {
        calls.push([thumbnailSize.name, width, height, maxSide]);
        if (width <= 0) throw new ValueError(`got ${width} x ${height}`);
        return { width: maxSide, height: maxSide };
      }),
    ],
  });
  return worker.start();
}

describe("POST /word-count", () => {
  it("sends text.word_count to the python queue and answers 202 with the id, without waiting", async () => {
    const response = await app.inject({
      method: "POST",
      url: "/word-count",
      payload: { text: "one two three" },
    });
    expect(response.statusCode).toBe(202);
    const { id, task, status } = response.json<{ id: string; task: string; status: string }>();
    expect(task).toBe("text.word_count");
    expect(status).toBe(`/tasks/${id}`);

    // No worker yet: the task waits in the broker, and its status says PENDING.
    expect((await app.inject({ url: status })).json()).toEqual({ id, state: "PENDING" });

    const calls: unknown[][] = [];
    await startStandInWorker(calls);
    const done = await app.inject({ url: `${status}?wait=10` });
    expect(done.json()).toEqual({ id, state: "SUCCESS", result: 3 });
    expect(calls).toEqual([["text.word_count", "one two three"]]);
  });

  it("takes a form, and redirects (303) to the status, which waits for the result", async () => {
    const response = await app.inject({
      method: "POST",
      url: "/word-count",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: new URLSearchParams({ text: "a form's text" }).toString(),
    });
    expect(response.statusCode).toBe(303);
    expect(response.headers.location).toMatch(/^\/tasks\/[0-9a-f-]{36}\?wait=10$/);
  });

  it("refuses a missing or empty text (400), and sends nothing", async () => {
    for (const payload of [{}, { text: "  " }, { text: 42 }]) {
      const response = await app.inject({ method: "POST", url: "/word-count", payload });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toEqual({
        error: "text must be a non-empty string of up to 1000000 characters",
      });
    }
  });
});

describe("POST /thumbnail-size", () => {
  it("sends whole numbers, from JSON or a form, with max_side defaulting to 256", async () => {
    const calls: unknown[][] = [];
    await startStandInWorker(calls);
    const json = await app.inject({
      method: "POST",
      url: "/thumbnail-size",
      payload: { width: 800, height: 600, max_side: 100 },
    });
    const form = await app.inject({
      method: "POST",
      url: "/thumbnail-size",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: "width=640&height=480",
    });
    await app.inject({ url: `${json.json<{ status: string }>().status}?wait=10` });
    await app.inject({ url: form.headers.location as string });
    expect(calls).toEqual(
      expect.arrayContaining([
        ["images.thumbnail_size", 800, 600, 100],
        ["images.thumbnail_size", 640, 480, 256],
      ]),
    );
  });

  it("leaves the range to the task: a failure comes back with its type, module and message", async () => {
    await startStandInWorker([]);
    const response = await app.inject({
      method: "POST",
      url: "/thumbnail-size",
      payload: { width: 0, height: 600 },
    });
    const { id, status } = response.json<{ id: string; status: string }>();
    expect((await app.inject({ url: `${status}?wait=10` })).json()).toEqual({
      id,
      state: "FAILURE",
      error: { type: "ValueError", module: "builtins", message: "got 0 x 600" },
    });
  });

  it("refuses what is not a whole number (400)", async () => {
    const response = await app.inject({
      method: "POST",
      url: "/thumbnail-size",
      payload: { width: "wide", height: 600 },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ error: "width must be a whole number" });
  });
});

describe("GET /tasks/:id", () => {
  it("says PENDING for an id nobody knows, after waiting as long as asked", async () => {
    const started = Date.now();
    const response = await app.inject({ url: "/tasks/no-such-task?wait=0.2" });
    expect(response.json()).toEqual({ id: "no-such-task", state: "PENDING" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it("refuses a wait that is not 0 to 30 seconds", async () => {
    for (const wait of ["-1", "31", "soon"]) {
      const response = await app.inject({ url: `/tasks/x?wait=${wait}` });
      expect(response.statusCode).toBe(400);
    }
  });

  it("describes the states a Python worker stores", () => {
    const meta = {
      task_id: "t",
      traceback: "Traceback (most recent call last): ...",
      children: [],
      date_done: "2026-11-25T03:00:00.000000",
    };
    expect(describeStatus("t", { ...meta, status: "STARTED", result: { pid: 1 } })).toEqual({
      id: "t",
      state: "STARTED",
    });
    expect(
      describeStatus("t", {
        ...meta,
        status: "FAILURE",
        result: { exc_type: "KeyError", exc_message: ["width"], exc_module: "builtins" },
      }),
    ).toEqual({
      id: "t",
      state: "FAILURE",
      error: { type: "KeyError", message: "width", module: "builtins" },
    });
  });
});

describe("GET /", () => {
  it("shows a form for each Python task", async () => {
    const response = await app.inject({ url: "/" });
    expect(response.headers["content-type"]).toContain("text/html");
    expect(response.body).toContain('<form method="post" action="/word-count">');
    expect(response.body).toContain('<form method="post" action="/thumbnail-size">');
  });
});

describe("configuration", () => {
  it("defaults to the local Redis, database 0, for both, as python/tasks.py does", () => {
    expect(loadConfig({})).toEqual({
      port: 3000,
      broker: "redis://127.0.0.1:6379/0",
      backend: "redis://127.0.0.1:6379/0",
      workerProcesses: 1,
    });
    const config = loadConfig({ CELERY_BROKER_URL: "redis://10.0.0.5:6379/2", PORT: "8080" });
    expect(config).toMatchObject({ port: 8080, backend: "redis://10.0.0.5:6379/2" });
  });
});
