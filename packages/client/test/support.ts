import {
  MemoryBroker,
  celeryNow,
  createMemoryBackend,
  createMemoryTransport,
  decodeEnvelope,
  decodeTaskMessage,
  type ResultMeta,
  type TaskMessage,
  type TaskState,
} from "@celery-ts/core";
import { createClient, type ClientOptions } from "../src/index.ts";

export interface Queued {
  queue: string;
  /** The priority and delivery time the client asked the transport for. */
  priority: number;
  availableAt: number;
  /** The envelope as stored on the (in-memory) broker. */
  raw: string;
  message: TaskMessage;
}

/**
 * A client on an in-memory broker and result backend. `next()` takes the next message off a queue
 * (delayed ones too) and decodes it as a worker would; `store()` plays the worker's side of results.
 */
export interface SetupOptions extends Omit<Partial<ClientOptions>, "backend"> {
  /** `false`: the client has no result backend. @default the in-memory backend */
  backend?: false;
}

export function setup({ backend: given, ...options }: SetupOptions = {}) {
  const broker = new MemoryBroker();
  const backend = createMemoryBackend();
  const client = createClient({
    broker: createMemoryTransport({ broker }),
    ...(given !== false && { backend }),
    ...options,
  });
  const next = (queue = "celery"): Queued => {
    const stored = broker.take([queue], Infinity);
    if (!stored) throw new Error(`no message on queue ${queue}`);
    const message = decodeTaskMessage(decodeEnvelope(stored.raw).message);
    return { ...stored, message };
  };
  const store = (taskId: string, status: TaskState, result: unknown = null): Promise<void> =>
    backend.store(taskId, meta(taskId, status, result));
  return { broker, backend, client, next, store };
}

export function meta(
  taskId: string,
  status: TaskState,
  result: unknown = null,
  traceback: string | null = null,
): ResultMeta {
  return { status, result, traceback, children: [], date_done: celeryNow(), task_id: taskId };
}
