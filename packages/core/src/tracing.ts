import { createRequire } from "node:module";
import type * as Otel from "@opentelemetry/api";
import type { TaskMessage } from "./task-message.ts";

/**
 * OpenTelemetry traces, as Python's opentelemetry-instrumentation-celery makes them: a PRODUCER
 * span `apply_async/<task>` per send, whose context travels in the message's headers (W3C
 * `traceparent`, injected by the global propagator), and a CONSUMER span `run/<task>` per run,
 * a child of it, so one trace crosses TypeScript and Python workers.
 *
 * Off unless the app installed `@opentelemetry/api` (an optional peer dependency) and set up an
 * SDK: without a registered tracer provider the API's spans are no-ops.
 */
let api: typeof Otel | null | undefined;

function otel(): typeof Otel | null {
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)("@opentelemetry/api") as typeof Otel;
    } catch {
      api = null;
    }
  }
  return api;
}

const SCOPE = "@celery-ts/core";

let noopProvider: Otel.TracerProvider | undefined;

/**
 * The API when spans or propagated contexts can come of a send or run: an SDK's tracer provider
 * or a propagator is set up. With neither, the spans are no-ops and no context travels, so the
 * span, the context and the extract are skipped (a run made them for every task).
 */
function active(): typeof Otel | null {
  const o = otel();
  if (!o) return null;
  const provider = o.trace.getTracerProvider();
  noopProvider ??= new o.ProxyTracerProvider().getDelegate();
  const noTracer =
    provider instanceof o.ProxyTracerProvider && provider.getDelegate() === noopProvider;
  return noTracer && o.propagation.fields().length === 0 ? null : o;
}

const getter: Otel.TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === "string" ? value : undefined;
  },
};

function attributes(message: TaskMessage, action: string): Otel.Attributes {
  return {
    "celery.action": action,
    "celery.task_name": message.headers.task,
    "messaging.message_id": message.headers.id,
    "messaging.system": "celery",
  };
}

/** Runs `publish` inside a producer span; the span's context goes into `message.headers`. */
export async function traceSend<T>(
  message: TaskMessage,
  queue: string,
  publish: () => Promise<T>,
): Promise<T> {
  const o = active();
  if (!o) return publish();
  const tracer = o.trace.getTracer(SCOPE);
  const span = tracer.startSpan(`apply_async/${message.headers.task}`, {
    kind: o.SpanKind.PRODUCER,
    attributes: {
      ...attributes(message, "apply_async"),
      "messaging.destination": queue,
      "celery.routing_key": queue,
    },
  });
  const context = o.trace.setSpan(o.context.active(), span);
  o.propagation.inject(context, message.headers);
  try {
    return await o.context.with(context, publish);
  } catch (error) {
    span.recordException(error as Error);
    span.setStatus({ code: o.SpanStatusCode.ERROR, message: String(error) });
    throw error;
  } finally {
    span.end();
  }
}

/**
 * Runs a task inside a consumer span, child of the context its message carries; tasks it sends
 * are children of the run. `failed` tells from the outcome whether the run failed.
 */
export function traceRun<T>(
  message: TaskMessage,
  run: () => Promise<T>,
  failed: (outcome: T) => unknown,
): Promise<T> {
  const o = active();
  // Untraced, the run's own promise: no async frame around it.
  return o ? traceRunWith(o, message, run, failed) : run();
}

async function traceRunWith<T>(
  o: typeof Otel,
  message: TaskMessage,
  run: () => Promise<T>,
  failed: (outcome: T) => unknown,
): Promise<T> {
  const parent = o.propagation.extract(o.ROOT_CONTEXT, message.headers, getter);
  const span = o.trace
    .getTracer(SCOPE)
    .startSpan(
      `run/${message.headers.task}`,
      { kind: o.SpanKind.CONSUMER, attributes: attributes(message, "run") },
      parent,
    );
  try {
    const outcome = await o.context.with(o.trace.setSpan(parent, span), run);
    const error = failed(outcome);
    if (error !== undefined) {
      if (error instanceof Error) span.recordException(error);
      span.setStatus({ code: o.SpanStatusCode.ERROR, message: String(error) });
    }
    return outcome;
  } finally {
    span.end();
  }
}
