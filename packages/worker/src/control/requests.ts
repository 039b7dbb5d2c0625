import type { TaskMessage } from "@celery-ts/core";

/** Where a received task is: held for its eta, waiting for a slot, or running. */
export type RequestState = "scheduled" | "reserved" | "active";

export interface TrackedRequest {
  readonly message: TaskMessage;
  readonly queue: string;
  state: RequestState;
  /** Epoch seconds when it started running. */
  timeStart: number | null;
  /** Fires the task's abort signal (revoke with terminate). */
  terminate?: (reason: Error) => void;
  eta: string | null;
  priority: number;
}

/**
 * The tasks a worker holds, as Celery's `worker/state.py` keeps them (reserved and active
 * requests, the count of tasks processed), for `inspect` and heartbeats.
 */
export class RequestTracker {
  readonly #requests = new Map<string, TrackedRequest>();
  readonly #totals = new Map<string, number>();
  #processed = 0;
  readonly #hostname: string;

  constructor(hostname: string) {
    this.#hostname = hostname;
  }

  received(message: TaskMessage, queue: string, scheduled: boolean): void {
    const priority = message.properties.priority;
    this.#requests.set(message.headers.id, {
      message,
      queue,
      state: scheduled ? "scheduled" : "reserved",
      timeStart: null,
      eta: message.headers.eta,
      priority: typeof priority === "number" ? priority : 0,
    });
  }

  /** A held (eta) task whose time came: it now waits for a slot. */
  due(id: string): void {
    const request = this.#requests.get(id);
    if (request) request.state = "reserved";
  }

  started(id: string, terminate: (reason: Error) => void): void {
    const request = this.#requests.get(id);
    if (!request) return;
    request.state = "active";
    request.timeStart = Date.now() / 1000;
    request.terminate = terminate;
  }

  /** Done with, run or not: counted as processed when it ran. */
  finished(id: string): void {
    const request = this.#requests.get(id);
    if (!request) return;
    this.#requests.delete(id);
    if (request.state !== "active") return;
    this.#processed++;
    const name = request.message.headers.task;
    this.#totals.set(name, (this.#totals.get(name) ?? 0) + 1);
  }

  get(id: string): TrackedRequest | undefined {
    return this.#requests.get(id);
  }

  list(state: RequestState): TrackedRequest[] {
    return [...this.#requests.values()].filter((r) => r.state === state);
  }

  get activeCount(): number {
    return this.list("active").length;
  }

  get processed(): number {
    return this.#processed;
  }

  totals(): Record<string, number> {
    return Object.fromEntries(this.#totals);
  }

  /** Celery's `Request.info()`. */
  info(request: TrackedRequest): Record<string, unknown> {
    const { message } = request;
    return {
      id: message.headers.id,
      name: message.headers.task,
      args: message.args,
      kwargs: message.kwargs,
      type: message.headers.task,
      hostname: this.#hostname,
      time_start: request.timeStart,
      acknowledged: false,
      delivery_info: {
        exchange: "",
        routing_key: request.queue,
        priority: request.priority,
        redelivered: false,
      },
      worker_pid: request.state === "active" ? process.pid : null,
    };
  }
}
