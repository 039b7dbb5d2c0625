// OpenTelemetry: with an SDK set up (the in-memory exporter), a send makes a PRODUCER span whose
// context travels in the message headers as Python's opentelemetry-instrumentation-celery
// carries it (W3C traceparent), and the run a CONSUMER span, its child, in the same trace.
import { propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { createClient } from "@celery-ts/client";
import { createMemoryTransport, defineTask, type WireMessage } from "@celery-ts/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createWorker } from "../src/index.ts";

const exporter = new InMemorySpanExporter();
beforeAll(() => {
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
afterAll(() => {
  trace.disable();
  propagation.disable();
});

const add = defineTask("otel.add", (a: number, b: number) => a + b);
const fail = defineTask("otel.fail", () => {
  throw new Error("traced failure");
});

it("links the producer span of a send to the consumer span of its run", async () => {
  const transport = createMemoryTransport();
  const published: WireMessage[] = [];
  const publish = transport.publish.bind(transport);
  transport.publish = async (message, options) => {
    published.push(message);
    return publish(message, options);
  };
  const worker = createWorker({
    broker: transport,
    backend: "memory://",
    tasks: [add, fail],
    heartbeat: false,
    remoteControl: false,
  });
  const client = createClient({ broker: transport, backend: "memory://" });
  try {
    await worker.start();
    const result = await client.sendTask<number>("otel.add", { args: [1, 2] });
    expect(await result.get({ timeout: 5 })).toBe(3);
    await expect((await client.sendTask("otel.fail")).get({ timeout: 5 })).rejects.toThrow(
      /traced failure/,
    );
    const spans = exporter.getFinishedSpans();
    const producer = spans.find((s) => s.name === "apply_async/otel.add")!;
    const consumer = spans.find((s) => s.name === "run/otel.add")!;
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(consumer.kind).toBe(SpanKind.CONSUMER);
    expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    expect(producer.attributes).toMatchObject({
      "celery.action": "apply_async",
      "celery.task_name": "otel.add",
      "messaging.message_id": result.id,
    });
    // On the wire: a W3C traceparent among the message headers, where Python's instrumentation looks.
    const traceparent = published.find((m) => m.headers.id === result.id)!.headers.traceparent;
    expect(traceparent).toBe(
      `00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01`,
    );
    const failed = spans.find((s) => s.name === "run/otel.fail")!;
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed.events.some((e) => e.name === "exception")).toBe(true);
  } finally {
    await worker.stop();
    await client.close();
  }
});
