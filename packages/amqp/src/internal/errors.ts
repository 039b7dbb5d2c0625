import { CeleryTsError, isCeleryTsError } from "@celery-ts/core";
import {
  closedError as kitClosedError,
  connectionError,
  networkErrorCode,
} from "@celery-ts/core/driver";

export const PKG = "amqp";

export function configError(message: string, cause?: unknown): CeleryTsError {
  return new CeleryTsError("CONFIG", message, { pkg: PKG, cause });
}

/** @param what `"transport"`, `"rpc backend"` */
export function closedError(what: string): CeleryTsError {
  return kitClosedError(PKG, `AMQP ${what}`);
}

export function encodeError(message: string, cause?: unknown): CeleryTsError {
  return new CeleryTsError("ENCODE", message, { pkg: PKG, cause });
}

export function malformedError(message: string): CeleryTsError {
  return new CeleryTsError("MALFORMED_MESSAGE", `malformed message: ${message}`, { pkg: PKG });
}

/** What the server said, from an amqplib error: `406 (PRECONDITION-FAILED) with message "..."`. */
export interface ServerReply {
  code: number;
  text: string;
}

const REPLY = /(\d{3}) \(([A-Z-]+)\)(?: with message "(.*)")?/s;

export function serverReply(error: unknown): ServerReply | undefined {
  if (!(error instanceof Error)) return undefined;
  const match = REPLY.exec(error.message);
  const numeric = (error as { code?: unknown }).code;
  if (!match) {
    return typeof numeric === "number" ? { code: numeric, text: error.message } : undefined;
  }
  return { code: Number(match[1]), text: match[3] ?? match[2] ?? error.message };
}

/** Whether RabbitMQ said NOT_FOUND (a queue or exchange that is not there), mapped or not. */
export function isNotFound(error: unknown): boolean {
  const raw = error instanceof CeleryTsError ? error.cause : error;
  return serverReply(raw)?.code === 404;
}

// RabbitMQ: "PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'q' in vhost '/':
// received none but current is the value '10' of type 'signedint'"
const INEQUIVALENT =
  /inequivalent arg '([^']+)' for (queue|exchange) '(.*?)' in vhost '(.*?)': received (.+?) but current is (.+)$/s;

/** Says what differs, in words, for a PRECONDITION_FAILED about arguments. */
export function describeMismatch(text: string): string | undefined {
  const match = INEQUIVALENT.exec(text);
  if (!match) return undefined;
  const [, argument, kind, name, vhost, received, current] = match;
  // "'10'" reads better as 10; "the value '10' of type 'signedint'" stays as it is.
  const plain = (value: string): string =>
    value.replace(/^the value /, "").replace(/^'([^']*)'$/, "$1");
  const ours = plain(received ?? "");
  const theirs = plain(current ?? "");
  return (
    `the ${kind} "${name}" (vhost "${vhost}") already exists with a different ${argument}: ` +
    `it is ${theirs} on the server, but celery-ts declares ${ours === "none" ? "none" : ours}. ` +
    `Declare the ${kind} the same way everywhere (for Python Celery: task_queues, ` +
    "queue_arguments and task_queue_max_priority; here: the queues, maxPriority, queueType and " +
    `deadLetter options), or delete the ${kind} so that it is declared again`
  );
}

/**
 * Maps what amqplib (or the socket under it) throws to a `CeleryTsError` that says what to do.
 * `doing` completes "could not ...", e.g. `declare the queue "celery"`.
 */
export function mapAmqpError(error: unknown, doing: string): CeleryTsError {
  if (isCeleryTsError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof RangeError && /encoding buffer/.test(message)) {
    return encodeError(
      `cannot ${doing}: the message's headers are larger than amqplib's 64 KiB limit`,
      error,
    );
  }
  const reply = serverReply(error);
  if (reply) return mapReply(reply, doing, error);
  const socketCode = (error as { code?: unknown } | null)?.code;
  if (typeof socketCode === "string") {
    if (networkErrorCode(error) !== undefined) {
      return connectionError(PKG, `cannot ${doing}: RabbitMQ cannot be reached (${message})`, {
        cause: error,
      });
    }
    if (/CERT|TLS|SSL/i.test(socketCode)) {
      return configError(
        `cannot ${doing}: the TLS handshake failed (${socketCode}: ${message}); check the ` +
          "server certificate and the ssl_* URL parameters or the tls option",
        error,
      );
    }
  }
  if (/ETIMEDOUT|closed|ended|socket|heartbeat|Unexpected close/i.test(message)) {
    return connectionError(
      PKG,
      `cannot ${doing}: the connection to RabbitMQ was lost (${message})`,
      {
        cause: error,
      },
    );
  }
  return connectionError(PKG, `cannot ${doing}: ${message}`, { cause: error, retryable: false });
}

function mapReply(reply: ServerReply, doing: string, cause: unknown): CeleryTsError {
  const said = `(RabbitMQ: ${reply.code} ${reply.text})`;
  switch (reply.code) {
    case 406: {
      const mismatch = describeMismatch(reply.text);
      if (mismatch) return configError(`cannot ${doing}: ${mismatch} ${said}`, cause);
      return configError(`cannot ${doing}: RabbitMQ refused it as invalid ${said}`, cause);
    }
    case 403:
      return configError(
        `cannot ${doing}: access refused; check the user name and password in the URL and the ` +
          `user's permissions on the vhost ${said}`,
        cause,
      );
    case 530:
      return configError(
        `cannot ${doing}: not allowed; check that the vhost in the URL exists and the user may ` +
          `use it ${said}`,
        cause,
      );
    case 405:
      return configError(
        `cannot ${doing}: the resource is locked (an exclusive queue of another connection) ${said}`,
        cause,
      );
    case 540:
      return configError(`cannot ${doing}: RabbitMQ does not support this ${said}`, cause);
    case 404:
      // A queue or exchange deleted behind our back: declaring again on retry fixes it.
      return connectionError(PKG, `cannot ${doing}: not found ${said}`, { cause });
    default:
      // 320 CONNECTION_FORCED (an operator or a restart), 5xx internal errors, resource alarms.
      return connectionError(PKG, `cannot ${doing}: the connection or channel was closed ${said}`, {
        cause,
      });
  }
}
