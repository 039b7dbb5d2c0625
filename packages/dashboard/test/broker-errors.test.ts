// A broker that fails to read dead letters (a real in-memory broker whose reads are made to fail):
// the list answers 503 with the broker's message and what to do; an action that was done still
// answers done when reading the counts again fails.
import { createMemoryTransport, type Logger, type Transport } from "@celery-ts/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { FleetState } from "../src/index.ts";
import { startHttpServer, type HttpServer } from "../src/internal/http-server.ts";
import { queueActions } from "../src/internal/queue-actions.ts";
import { QueueWatch } from "../src/internal/queue-watch.ts";

const inner = createMemoryTransport();
const transport: Transport = Object.assign(Object.create(inner) as Transport, {
  deadLetters: () => Promise.reject(new Error("connection reset by the broker")),
});
const warnings: string[] = [];
const logger: Logger = {
  debug: () => {},
  info: () => {},
  warn: (message: string) => void warnings.push(message),
  error: () => {},
};
let server: HttpServer;

beforeAll(async () => {
  const queues = new QueueWatch(transport, ["q"], { deadLetterEvery: 60_000 });
  server = await startHttpServer({
    host: "127.0.0.1",
    port: 0,
    auth: undefined,
    state: new FleetState({ maxTasks: 10 }),
    queues,
    transport,
    actions: queueActions({ transport, queues, logger }),
    logger,
  });
});

afterAll(async () => {
  await server.close();
  await inner.close();
});

it("answers 503 with the broker's message when it cannot list the dead letters", async () => {
  const response = await fetch(`${server.url}api/queues/q/dead-letters`);
  expect(response.status).toBe(503);
  const { error } = (await response.json()) as { error: string };
  expect(error).toContain("connection reset by the broker");
  expect(error).toContain("Check that the broker is up");
});

it("reports a purge done when reading the queue again afterwards fails, and logs that", async () => {
  const response = await fetch(`${server.url}api/actions/purge`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-celery-ts-dashboard": "1" },
    body: JSON.stringify({ queue: "q" }),
  });
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({ ok: true, message: "purged 0 messages from q" });
  expect(warnings).toContain("dashboard: reading the queue again after an action failed");
});
