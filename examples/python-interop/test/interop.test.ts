// Both directions across languages, with real processes on Redis (database 14), as the README
// runs them: a Python Celery worker for python/tasks.py, `node src/main.ts` (the web app and a
// celery-ts worker for src/tasks.ts), and python/send_to_typescript.py.
import { createClient, type Client } from "@celery-ts/client";
import { TaskFailedError } from "@celery-ts/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaskStatus } from "../src/app.ts";
import {
  REDIS_URL,
  eventually,
  emptyExampleQueues,
  runPythonScript,
  startMain,
  startPythonWorker,
  type Child,
} from "./support.ts";

let python: Child | undefined;
let main: Child | undefined;
let base: string;
let client: Client | undefined;

beforeAll(async () => {
  await emptyExampleQueues();
  main = startMain();
  python = await startPythonWorker();
  const app = main;
  base = await eventually(
    () => /web: listening on (http:\/\/\S+?)\/ /.exec(app.output())?.[1],
    30_000,
    "the web server of src/main.ts",
  );
  await eventually(
    () => (app.output().includes("worker ready") ? true : undefined),
    30_000,
    "the celery-ts worker of src/main.ts",
  );
}, 120_000);

afterAll(async () => {
  await client?.close();
  // Whatever happened, leave no process behind: main.ts stops its worker on SIGTERM; should it
  // not, its worker (in a process group of its own) is killed by the pid main.ts logged.
  await Promise.all([main?.stop("SIGTERM", 40_000), python?.stop("SIGTERM", 20_000)]);
  const output = main?.output() ?? "";
  const workerPid = Number(/worker: pid (\d+)/.exec(output)?.[1]);
  if (workerPid > 0 && !output.includes("worker: stopped")) {
    try {
      process.kill(workerPid, "SIGKILL");
    } catch {
      // already gone, as it should be
    }
  }
}, 90_000);

/** Waits for the Python worker to log a line: it logs a task's outcome after storing it. */
const pythonLogged = (pattern: RegExp | string): Promise<true> =>
  eventually(
    () => {
      const log = python!.output();
      return (typeof pattern === "string" ? log.includes(pattern) : pattern.test(log)) || undefined;
    },
    10_000,
    `the Python worker to log ${String(pattern)}`,
  );

const post = (path: string, body: unknown): Promise<Response> =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

async function status(path: string): Promise<TaskStatus> {
  const response = await fetch(`${base}${path}`);
  expect(response.status).toBe(200);
  return (await response.json()) as TaskStatus;
}

describe("TypeScript web app -> Python worker", () => {
  it("answers with the task id at once, and reads the result Python computed", async () => {
    const response = await post("/word-count", { text: "Tasks cross languages, don't they?" });
    expect(response.status).toBe(202);
    const { id, task, status: statusUrl } = (await response.json()) as Record<string, string>;
    expect(task).toBe("text.word_count");
    expect(statusUrl).toBe(`/tasks/${id}`);

    expect(await status(`/tasks/${id}?wait=20`)).toEqual({ id, state: "SUCCESS", result: 5 });
    // Python ran it: its worker logs the task and its result (just after storing it).
    await pythonLogged(new RegExp(`Task text\\.word_count\\[${id}\\] succeeded in [\\d.e-]+s: 5`));
    // The status is stored, not remembered by the web app: reading it again, at once, is the same.
    expect(await status(`/tasks/${id}`)).toEqual({ id, state: "SUCCESS", result: 5 });
  }, 60_000);

  it("takes a form, and redirects to the result", async () => {
    const response = await fetch(`${base}/thumbnail-size`, {
      method: "POST",
      body: new URLSearchParams({ width: "1920", height: "1080", max_side: "256" }),
      redirect: "manual",
    });
    expect(response.status).toBe(303);
    const location = response.headers.get("location")!;
    expect(location).toMatch(/^\/tasks\/[0-9a-f-]{36}\?wait=10$/);
    const result = await status(location);
    expect(result).toMatchObject({ state: "SUCCESS", result: { width: 256, height: 144 } });
    await pythonLogged(`Task images.thumbnail_size[${result.id}] succeeded`);
  }, 60_000);

  it("shows a Python ValueError as the failure, type and message", async () => {
    const response = await post("/thumbnail-size", { width: 0, height: 600 });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    expect(await status(`/tasks/${id}?wait=20`)).toEqual({
      id,
      state: "FAILURE",
      error: {
        type: "ValueError",
        module: "builtins",
        message:
          "an image is at least 1 x 1 pixels and a thumbnail at least 1 pixel wide, got 0 x 600 with max_side 256",
      },
    });

    // A TypeScript client's get() rejects with it, Python's traceback included.
    client = createClient({ broker: REDIS_URL, backend: REDIS_URL });
    const failure = await client
      .asyncResult(id)
      .get({ timeout: 10 })
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(TaskFailedError);
    expect(failure).toMatchObject({ excType: "ValueError", excModule: "builtins" });
    expect((failure as TaskFailedError).traceback).toMatch(
      /Traceback[\s\S]*tasks\.py[\s\S]*raise ValueError/,
    );
  }, 60_000);
});

describe("Python script -> TypeScript worker", () => {
  it("gets results, and catches the TypeScript TypeError and ValueError as Python's own", async () => {
    const { stdout, stderr, code } = await runPythonScript("send_to_typescript.py");
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const lines = stdout.trim().split("\n");
    expect(lines).toEqual([
      'send_task("reports.summarize", args=[[3, 1, 4, 1, 5, 9, 2, 6]], kwargs={"precision": 1}) -> {"count": 8, "max": 9, "mean": 3.9, "min": 1, "total": 31}',
      'signature("reports.summarize").delay([2.5, 7.5, 10]) -> {"count": 3, "max": 10, "mean": 6.67, "min": 2.5, "total": 20}',
      `send_task("reports.summarize", args=[[1, 'two', 3]]) raised TypeError: reports.summarize takes a list of numbers; item 1 is a str ("two")`,
      expect.stringMatching(/^ {2}FAILURE, thrown at .*src\/tasks\.ts:\d+:\d+\)$/),
      'signature("reports.summarize").delay([]) raised ValueError: reports.summarize needs at least one number',
      "done",
    ]);
    // The celery-ts worker of src/main.ts ran all four.
    const log = main!.output();
    expect(log.match(/task succeeded .*task=reports\.summarize/g)).toHaveLength(2);
    expect(log.match(/task failed .*task=reports\.summarize/g)).toHaveLength(2);
  }, 150_000);
});

describe("pnpm start", () => {
  it("stops the web server and the celery-ts worker on Ctrl-C (SIGINT), exit code 0", async () => {
    const app = main!;
    app.process.kill("SIGINT");
    expect(await app.exited).toBe(0);
    expect(app.output()).toContain("worker: stopped (exit code 0)");
  }, 60_000);
});
