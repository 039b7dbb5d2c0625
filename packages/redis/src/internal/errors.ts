import { isCeleryTsError, type CeleryTsError } from "@celery-ts/core";
import {
  configError as kitConfigError,
  connectionError,
  networkErrorCode,
} from "@celery-ts/core/driver";

export const PKG = "redis";

export function configError(message: string, cause?: unknown): CeleryTsError {
  return kitConfigError(PKG, message, cause);
}

/** What ioredis says when a command could not be sent, or its connection went while it waited. */
const CONNECTION_MESSAGES = [
  "Connection is closed",
  "Stream isn't writeable",
  "Command timed out",
  "Command aborted due to connection close",
  "Reached the max retries per request limit",
  "connect ETIMEDOUT",
  "All sentinels are unreachable",
  "Failed to connect to sentinel",
];

/** Replies that mean "not now": the server is loading, failing over, out of memory, or busy. */
const TRANSIENT_REPLIES = [
  "LOADING",
  "BUSY",
  "TRYAGAIN",
  "CLUSTERDOWN",
  "MASTERDOWN",
  "READONLY",
  "OOM",
];

/** Replies that mean the credentials or the user's permissions are wrong: retrying will not help. */
const AUTH_REPLIES = ["NOAUTH", "WRONGPASS", "NOPERM", "invalid password", "invalid username"];

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The first word of a Redis error reply ("WRONGPASS", "LOADING"), after ioredis's own prefixes. */
function replyCode(message: string): string {
  return (
    message
      .replace(/^Ready check failed: /, "")
      .split(" ", 1)[0]
      ?.toUpperCase() ?? ""
  );
}

/** True for an error that says the credentials or permissions are wrong. */
export function isAuthError(error: unknown): boolean {
  const message = messageOf(error);
  return AUTH_REPLIES.some(
    (reply) => replyCode(message) === reply || message.toLowerCase().includes(reply.toLowerCase()),
  );
}

function isRedisError(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  const { name } = error;
  return (
    name === "ReplyError" ||
    name === "RedisError" ||
    name === "AbortError" ||
    name === "ParserError" ||
    name === "MaxRetriesPerRequestError" ||
    name === "ClusterAllFailedError" ||
    typeof (error as NodeJS.ErrnoException).code === "string" ||
    error.message.startsWith("Ready check failed") ||
    CONNECTION_MESSAGES.some((text) => error.message.includes(text))
  );
}

/**
 * Maps what ioredis throws to a `CeleryTsError` that names the server and says what to do. Our own
 * errors, and errors that are not Redis's or the network's (bugs), pass through unchanged.
 *
 * @param target the server, for messages: `127.0.0.1:6379/0`, or a Sentinel master's name.
 */
export function mapRedisError(error: unknown, target: string): unknown {
  if (isCeleryTsError(error) || !isRedisError(error)) return error;
  const message = error.message;
  const code = networkErrorCode(error);
  if (isAuthError(error)) {
    return configError(
      `Redis at ${target} refused the credentials or the command (${message}); check the ` +
        "username and password in the URL (redis://user:password@host:port/db) and the user's ACL",
      error,
    );
  }
  if (code !== undefined) {
    const hint =
      code === "ENOTFOUND" || code === "EAI_AGAIN"
        ? "check the host name in the URL"
        : "is the server running, and are the host and port in the URL right?";
    return connectionError(PKG, `cannot reach Redis at ${target} (${code}): ${hint}`, {
      cause: error,
    });
  }
  if (CONNECTION_MESSAGES.some((text) => message.includes(text)) || error.name === "AbortError") {
    return connectionError(
      PKG,
      `lost the connection to Redis at ${target} (${message}); retry once it is back`,
      { cause: error },
    );
  }
  const reply = replyCode(message);
  if (TRANSIENT_REPLIES.includes(reply)) {
    return connectionError(
      PKG,
      `Redis at ${target} cannot serve the command now (${message}); retry later`,
      { cause: error },
    );
  }
  return connectionError(PKG, `Redis at ${target} refused a command: ${message}`, {
    cause: error,
    retryable: false,
  });
}
