import {
  anonNodename,
  callControl,
  castControl,
  createEventPublisher,
  resolveBroadcast,
  type Broadcast,
  type ControlCallOptions,
  type ControlReply,
  type EventPublisher,
  type TaskMessage,
  type Transport,
} from "@celery-ts/core";

export interface RevokeOptions {
  /**
   * Also stop the task if it is running: on a celery-ts worker its abort signal fires and it is
   * stored REVOKED at once; a Python worker sends its process `signal`.
   * @default false
   */
  terminate?: boolean;
  /** The signal a Python worker sends with `terminate`. @default "SIGTERM" */
  signal?: string;
  /** Only these workers. @default all */
  destination?: readonly string[];
}

/** Remote control of the fleet (Python Celery workers too): `celery inspect` and `celery control`. */
export interface Control {
  /**
   * Sends a command and collects the replies that arrive within `timeout` seconds, one
   * `{ "<node>": answer }` per worker, as Celery's `app.control.broadcast(reply=True)`.
   */
  call(
    method: string,
    args?: Record<string, unknown>,
    options?: ControlCallOptions,
  ): Promise<ControlReply[]>;
  /** Sends a command without waiting for replies. */
  cast(method: string, args?: Record<string, unknown>, options?: ControlCallOptions): Promise<void>;
  /** The workers that answer, with their answer (`{ ok: "pong" }`). */
  ping(options?: ControlCallOptions): Promise<ControlReply[]>;
  /** Revokes tasks on every worker: they are stored REVOKED and never run. */
  revoke(ids: string | readonly string[], options?: RevokeOptions): Promise<void>;
}

/** The client's own view of its control: the event publisher it sends `task-sent` on, and close. */
export interface ClientControl extends Control {
  events(): Promise<EventPublisher>;
  close(): Promise<void>;
}

/** The client's broadcast connection, opened on first use. */
export function createControl(broker: Transport | string): ClientControl {
  let opened: Promise<Broadcast> | undefined;
  let publisher: EventPublisher | undefined;
  const open = (): Promise<Broadcast> =>
    (opened ??= resolveBroadcast(broker).then(async (broadcast) => {
      await broadcast.connect();
      return broadcast;
    }));
  return {
    async call(method, args = {}, options = {}) {
      return callControl(await open(), method, args, options);
    },
    async cast(method, args = {}, options = {}) {
      await castControl(await open(), method, args, options);
    },
    async ping(options = {}) {
      return callControl(await open(), "ping", {}, { timeout: 0.2, ...options });
    },
    async revoke(ids, options = {}) {
      const taskIds = typeof ids === "string" ? [ids] : [...ids];
      await castControl(
        await open(),
        "revoke",
        {
          task_id: taskIds,
          terminate: options.terminate ?? false,
          signal: options.signal ?? "SIGTERM",
        },
        options.destination ? { destination: options.destination } : {},
      );
    },
    async events() {
      publisher ??= createEventPublisher(await open(), { hostname: anonNodename() });
      return publisher;
    },
    async close() {
      const broadcast = await opened?.catch(() => undefined);
      await broadcast?.close();
    },
  };
}

/** Celery's task-sent event fields for a message sent to `queue`. */
export function taskSentFields(message: TaskMessage, queue: string): Record<string, unknown> {
  const { headers } = message;
  return {
    uuid: headers.id,
    root_id: headers.root_id,
    parent_id: headers.parent_id,
    name: headers.task,
    args: headers.argsrepr,
    kwargs: headers.kwargsrepr,
    retries: headers.retries,
    eta: headers.eta,
    expires: headers.expires,
    queue,
    exchange: "",
    routing_key: queue,
  };
}
