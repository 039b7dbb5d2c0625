import {
  TaskState,
  celeryNow,
  taskIdOf,
  exceptionInfo,
  unhonourableSignature,
  withExceptionArgs,
  type Logger,
  type ResultBackend,
  type Signature,
  type TaskMessage,
  type WireMessage,
} from "@celery-ts/core";

/**
 * What a message asks for that this worker cannot honour, checked before decoding, or undefined.
 * Such a message is refused loudly (logged, FAILURE stored, dead-lettered), never half-run.
 * (The canvas fields `chain`, `callbacks`, `errbacks` and `chord` are checked once decoded, by
 * `unhonourableCanvas`.)
 */
export function unhonourable(wire: WireMessage): string | undefined {
  const compression = wire.headers.compression;
  if (compression !== undefined && compression !== null) {
    return (
      `its body is compressed (header compression=${JSON.stringify(compression)}), which ` +
      "celery-ts does not read: turn off task_compression (or compression=) on the producer"
    );
  }
  return undefined;
}

/**
 * Why the canvas around a decoded message (its callbacks, errbacks, chain and chord body) cannot
 * be honoured, or undefined: checked before the task runs, so that a signature option celery-ts
 * would drop refuses the message instead of failing after the task's side effects.
 */
export function unhonourableCanvas(message: TaskMessage): string | undefined {
  const { callbacks, errbacks, chain, chord } = message.embed;
  // Walked list by list, not joined: most messages have none, and it runs for every message.
  return (
    firstUnhonourable(callbacks) ??
    firstUnhonourable(errbacks) ??
    firstUnhonourable(chain) ??
    (chord ? unhonourableSignature(chord) : undefined)
  );
}

function firstUnhonourable(
  signatures: readonly Signature[] | null | undefined,
): string | undefined {
  if (!signatures) return undefined;
  for (const sig of signatures) {
    const reason = sig ? unhonourableSignature(sig) : undefined;
    if (reason !== undefined) return reason;
  }
  return undefined;
}

/**
 * The id (and task) a message names in its headers, readable even when its body is not (pickle,
 * yaml, msgpack).
 */
export function identityOf(wire: WireMessage): { id: string; task?: string } | undefined {
  const { id, task } = wire.headers;
  if (typeof id !== "string" || id === "") return undefined;
  return typeof task === "string" ? { id, task } : { id };
}

/** The id a message the transport could not read names, for the log line, when it is found. */
export function identityOfRaw(delivery: { raw: string; taskId?: string }): { id?: string } {
  const id = delivery.taskId ?? taskIdOf(delivery.raw);
  return id === undefined ? {} : { id };
}

/** Celery's `InvalidTaskError(reason)`: the exception a refused message's FAILURE holds. */
export function invalidTaskError(reason: string): Error {
  const error = new Error(reason);
  error.name = "InvalidTaskError";
  return withExceptionArgs(error, [reason]);
}

/**
 * Stores FAILURE for a message the worker refuses before running it (unknown task, undecodable
 * or unhonourable message), so that whoever waits on its result learns why instead of waiting
 * forever, as Celery does for an unknown task.
 */
async function storeRefusal(
  backend: ResultBackend,
  wire: WireMessage,
  id: string,
  error: Error,
): Promise<void> {
  const { reply_to: replyTo, correlation_id: correlationId } = wire.properties;
  await backend.store(
    id,
    {
      status: TaskState.FAILURE,
      result: exceptionInfo(error),
      traceback: null,
      children: [],
      date_done: celeryNow(),
      task_id: id,
    },
    {
      ...(typeof replyTo === "string" && { replyTo }),
      correlationId: typeof correlationId === "string" ? correlationId : id,
    },
  );
}

/**
 * Records why a message is refused: FAILURE (`failure`, else `InvalidTaskError(reason)`) stored
 * for its id when the headers name one and there is a backend. Returns the id and task for the
 * log line; never throws (a store that fails is logged: the dead-letter still happens).
 */
export async function recordRefusal(
  backend: ResultBackend | undefined,
  wire: WireMessage | undefined,
  reason: string,
  failure: Error | undefined,
  log: Logger,
): Promise<Record<string, unknown>> {
  const identity = wire && identityOf(wire);
  if (!identity) return {};
  if (backend) {
    try {
      await storeRefusal(backend, wire, identity.id, failure ?? invalidTaskError(reason));
    } catch (error) {
      log.error("could not store FAILURE for a refused message", {
        ...identity,
        error: String(error),
      });
    }
  }
  return identity;
}
