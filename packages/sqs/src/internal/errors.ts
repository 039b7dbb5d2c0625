import { CeleryTsError, isCeleryTsError } from "@celery-ts/core";

export const PKG = "sqs";

export function configError(message: string, cause?: unknown): CeleryTsError {
  return new CeleryTsError("CONFIG", message, { pkg: PKG, cause });
}

export function closedError(): CeleryTsError {
  return new CeleryTsError("CLOSED", "the SQS transport is closed", { pkg: PKG });
}

/** What was being done when an error happened, for a message that says where to look. */
export interface ErrorContext {
  /** The SQS API action, e.g. "ReceiveMessage" (also the IAM permission, `sqs:<action>`). */
  action: string;
  /** The queue as celery-ts names it. */
  queue?: string;
  /** The queue's name on SQS (prefixed and translated), when it differs. */
  sqsName?: string;
  /** Where requests go: the endpoint, or "AWS (<region>)". */
  endpoint?: string;
}

const NOT_FOUND = new Set(["QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"]);

const DENIED = new Set([
  "AccessDenied",
  "AccessDeniedException",
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "SignatureDoesNotMatch",
  "MissingAuthenticationToken",
  "IncompleteSignature",
  "InvalidSecurity",
  "ExpiredToken",
  "ExpiredTokenException",
  "KmsAccessDenied",
  "KmsDisabled",
  "KmsNotFound",
  "KmsInvalidKeyUsage",
  "KmsInvalidState",
  "KmsOptInRequired",
]);

/** Errors that clear by themselves: throttling, SQS having a bad moment, a purge still running. */
const TRANSIENT = new Set([
  "ThrottlingException",
  "Throttling",
  "RequestThrottled",
  "KmsThrottled",
  "OverLimit",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "InternalError",
  "InternalFailure",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "PurgeQueueInProgress",
  "QueueDeletedRecently",
]);

/** Socket-level failures: the endpoint cannot be reached (yet). */
const NETWORK = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
]);

interface NativeError {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  message?: unknown;
  errors?: unknown;
  $fault?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

function nameOf(error: NativeError): string {
  return typeof error.name === "string" ? error.name : "";
}

/** The socket error code, also inside an AggregateError (Node tries IPv4 and IPv6). */
function networkCode(error: NativeError): string | undefined {
  if (typeof error.code === "string" && NETWORK.has(error.code)) return error.code;
  if (Array.isArray(error.errors)) {
    for (const inner of error.errors as NativeError[]) {
      const code = inner && typeof inner === "object" ? networkCode(inner) : undefined;
      if (code) return code;
    }
  }
  return undefined;
}

/** True for the errors SQS returns when a receipt handle no longer holds the message. */
export function isLostReceipt(error: unknown): boolean {
  if (isCeleryTsError(error)) return isLostReceipt(error.cause);
  const name = error && typeof error === "object" ? nameOf(error as NativeError) : "";
  return name === "ReceiptHandleIsInvalid" || name === "MessageNotInflight";
}

export function isQueueMissing(error: unknown): boolean {
  if (isCeleryTsError(error)) return isQueueMissing(error.cause);
  if (!error || typeof error !== "object") return false;
  const e = error as NativeError;
  return NOT_FOUND.has(nameOf(e)) || (typeof e.Code === "string" && NOT_FOUND.has(e.Code));
}

function describeQueue(context: ErrorContext): string {
  if (context.queue === undefined) return "";
  const sqs =
    context.sqsName !== undefined && context.sqsName !== context.queue
      ? ` (SQS name "${context.sqsName}")`
      : "";
  return ` queue "${context.queue}"${sqs}`;
}

/**
 * Maps what the AWS SDK throws to a `CeleryTsError` that says what to do about it: the queue is
 * missing or access is denied (`CONFIG`, naming the queue), SQS is throttling or unreachable
 * (`CONNECTION`, retryable). The SDK has already retried transient errors by then.
 */
export function mapSqsError(error: unknown, context: ErrorContext): CeleryTsError {
  if (isCeleryTsError(error)) return error;
  const e: NativeError = error && typeof error === "object" ? (error as NativeError) : {};
  const name = nameOf(e);
  const detail = `${name || "Error"}: ${typeof e.message === "string" ? e.message : String(error)}`;
  const queue = describeQueue(context);
  const where = context.endpoint ? ` at ${context.endpoint}` : "";
  const doing = `${context.action}${queue ? ` on${queue}` : ""}`;

  if (NOT_FOUND.has(name) || (typeof e.Code === "string" && NOT_FOUND.has(e.Code))) {
    return configError(
      `the SQS${queue || " queue"} does not exist${where} (${doing}: ${detail}); create it, ` +
        "fix its URL in predefinedQueues, or check the region, endpoint and queueNamePrefix",
      error,
    );
  }
  if (DENIED.has(name) || (typeof e.Code === "string" && DENIED.has(e.Code))) {
    return configError(
      `access denied by SQS${where} for ${doing} (${detail}); check the AWS credentials and ` +
        `that they allow sqs:${context.action}${queue ? ` on the${queue}` : ""}`,
      error,
    );
  }
  if (name === "CredentialsProviderError") {
    return configError(
      `no AWS credentials found for ${doing} (${detail}); set AWS_ACCESS_KEY_ID and ` +
        "AWS_SECRET_ACCESS_KEY, an AWS profile or role, the credentials option, or " +
        "sqs://<access key id>:<secret access key>@ in the URL",
      error,
    );
  }
  if (/region is missing/i.test(detail)) {
    return configError(
      `no AWS region for ${doing}; set the region option, ?region= in the URL, or AWS_REGION`,
      error,
    );
  }
  const network = networkCode(e);
  if (network) {
    return new CeleryTsError(
      "CONNECTION",
      `cannot reach SQS${where} (${network}) for ${doing}; retry later`,
      { pkg: PKG, retryable: true, cause: error },
    );
  }
  const status = typeof e.$metadata?.httpStatusCode === "number" ? e.$metadata.httpStatusCode : 0;
  if (TRANSIENT.has(name) || e.$retryable !== undefined || status >= 500 || e.$fault === "server") {
    const what = name === "PurgeQueueInProgress" ? "SQS allows one purge per queue a minute" : "";
    return new CeleryTsError(
      "CONNECTION",
      `SQS${where} failed ${doing} (${detail})${what ? `; ${what}` : ""}; retry later`,
      { pkg: PKG, retryable: true, cause: error },
    );
  }
  return new CeleryTsError("CONNECTION", `SQS${where} rejected ${doing} (${detail})`, {
    pkg: PKG,
    cause: error,
  });
}
