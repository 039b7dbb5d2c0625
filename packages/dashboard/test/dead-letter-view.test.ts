// How the page names a dead letter's task, for each way drivers store the message.
import { expect, it } from "vitest";
import { deadLetterRow } from "../src/internal/dead-letter-view.ts";

const base = { queue: "q", reason: "rejected", rejectedAt: 1, taskId: "id-1" };

it("names the task of a RabbitMQ letter (the body alone; the name was in the task header)", () => {
  // As the amqp driver lists it: raw is the message body (args, kwargs, embed), no envelope.
  const raw = JSON.stringify([[1, 2], {}, { callbacks: null, errbacks: null, chain: null }]);
  expect(deadLetterRow({ ...base, raw, taskName: "tasks.add" })).toMatchObject({
    taskId: "id-1",
    name: "tasks.add",
    kept: true,
  });
});

it("names the task of a letter stored as a whole kombu envelope (Redis, SQLite, ...)", () => {
  const raw = JSON.stringify({ body: "", headers: { task: "tasks.mul", id: "id-1" } });
  expect(deadLetterRow({ ...base, raw }).name).toBe("tasks.mul");
  expect(deadLetterRow({ ...base, raw: "" })).toMatchObject({ name: null, kept: false });
});
