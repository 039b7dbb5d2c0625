// The TypeScript tasks the Python script calls, on an in-process worker and broker, sent the way
// Python sends them: by name, with positional and keyword arguments.
import { createClient, type Client } from "@celery-ts/client";
import { TaskFailedError } from "@celery-ts/core";
import { createWorker, type Worker } from "@celery-ts/worker";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { summarize, type Summary } from "../src/tasks.ts";

let worker: Worker;
let client: Client;
let n = 0;

beforeEach(async () => {
  const url = `memory://python-interop-tasks-${++n}`;
  worker = createWorker({ broker: url, backend: url, tasks: [summarize] });
  await worker.start();
  client = createClient({ broker: url, backend: url });
});

afterEach(async () => {
  await client.close();
  await worker.stop();
});

const failureOf = async (args: unknown[], kwargs: Record<string, unknown> = {}) => {
  const result = await client.sendTask("reports.summarize", { args, kwargs });
  return result.get({ timeout: 10, propagate: false });
};

describe("reports.summarize", () => {
  it("summarizes, rounding to 2 digits by default", async () => {
    const result = await client.task(summarize).delay([2.5, 7.5, 10]);
    expect(await result.get({ timeout: 10 })).toEqual({
      count: 3,
      total: 20,
      mean: 6.67,
      min: 2.5,
      max: 10,
    });
  });

  it("takes the precision as a keyword argument, as Python's send_task(kwargs=...) sends it", async () => {
    const result = await client.sendTask<Summary>("reports.summarize", {
      args: [[1, 2, 2]],
      kwargs: { precision: 0 },
    });
    expect(await result.get({ timeout: 10 })).toMatchObject({ mean: 2, total: 5 });
  });

  it("throws a TypeError, stored with module builtins, for a list that is not all numbers", async () => {
    const failure = await failureOf([[1, "two", 3]]);
    expect(failure).toBeInstanceOf(TaskFailedError);
    expect(failure).toMatchObject({
      excType: "TypeError",
      excModule: "builtins",
      excMessage: 'reports.summarize takes a list of numbers; item 1 is a str ("two")',
    });
    expect(await failureOf(["3, 4"])).toMatchObject({
      excType: "TypeError",
      excMessage: "reports.summarize takes a list of numbers, not a str",
    });
    expect(await failureOf([[1]], { precision: "two" })).toMatchObject({ excType: "TypeError" });
  });

  it("throws its ValueError, stored as Python's, for an empty list", async () => {
    expect(await failureOf([[]])).toMatchObject({
      excType: "ValueError",
      excModule: "builtins",
      excMessage: "reports.summarize needs at least one number",
    });
  });
});
