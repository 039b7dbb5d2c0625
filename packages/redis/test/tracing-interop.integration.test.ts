// OpenTelemetry across Python Celery and celery-ts, on Redis. Python's OpenTelemetry packages are
// not installed here, so the Python side does by hand what opentelemetry-instrumentation-celery
// does: its producer puts a W3C `traceparent` into the message headers (before_task_publish), and
// its worker reads the context from `task.request` attributes. The TS side runs a real SDK.
import { randomBytes, randomUUID } from "node:crypto";
import { propagation, SpanKind, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { createClient, type Client } from "@celery-ts/client";
import { defineTask } from "@celery-ts/core";
import { runPythonClient, startPythonWorker, type PythonWorker } from "@celery-ts/testing";
import { createWorker, type Worker } from "@celery-ts/worker";
import { afterAll, beforeAll, expect, it } from "vitest";
import { REDIS_URL } from "./support/redis.ts";

const config = { brokerUrl: REDIS_URL, resultBackend: REDIS_URL };
const exporter = new InMemorySpanExporter();
const tsQueue = `otel-ts-${randomUUID()}`;
const pyQueue = `otel-py-${randomUUID()}`;
let worker: Worker;
let python: PythonWorker;
let client: Client;

beforeAll(async () => {
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  worker = createWorker({
    broker: REDIS_URL,
    backend: REDIS_URL,
    tasks: [defineTask("otel.add", (a: number, b: number) => a + b)],
    queues: [tsQueue],
    heartbeat: false,
    remoteControl: false,
  });
  await worker.start();
  python = await startPythonWorker({ ...config, queues: [pyQueue] });
  client = createClient({ broker: REDIS_URL, backend: REDIS_URL });
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await python?.stop();
  await client?.close();
  trace.disable();
  propagation.disable();
});

it("a Python producer's trace context continues in the TS worker's consumer span", async () => {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  const sent = await runPythonClient(config, {
    op: "apply_async",
    task: "otel.add",
    args: [2, 3],
    queue: tsQueue,
    traceparent: `00-${traceId}-${spanId}-01`,
    timeout: 20,
  });
  expect(sent).toMatchObject({ status: "SUCCESS", result: 5 });
  const run = exporter.getFinishedSpans().find((s) => s.name === "run/otel.add")!;
  expect(run.kind).toBe(SpanKind.CONSUMER);
  expect(run.spanContext().traceId).toBe(traceId);
  expect(run.parentSpanContext?.spanId).toBe(spanId);
  expect(run.attributes).toMatchObject({ "messaging.message_id": sent.id });
}, 60_000);

it("a TS producer's span context reaches the Python worker's task.request", async () => {
  const result = await client.sendTask<{ traceparent: string | null }>("interop.trace_context", {
    queue: pyQueue,
  });
  const seen = await result.get({ timeout: 20 });
  const producer = exporter
    .getFinishedSpans()
    .find(
      (s) =>
        s.name === "apply_async/interop.trace_context" &&
        s.attributes["messaging.message_id"] === result.id,
    )!;
  expect(producer.kind).toBe(SpanKind.PRODUCER);
  expect(seen.traceparent).toBe(
    `00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01`,
  );
}, 60_000);
