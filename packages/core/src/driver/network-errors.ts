/**
 * Socket-level error codes that mean the server is down, restarting or unreachable for now:
 * trying again later may succeed. The one list every driver uses.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ERR_SOCKET_CLOSED",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
]);

/**
 * The network error code of `error` (`"ECONNREFUSED"`), also inside an `AggregateError` (Node
 * tries IPv4 and IPv6) or a `cause`; undefined when it is not a network error.
 */
export function networkErrorCode(error: unknown, depth = 0): string | undefined {
  if (!error || typeof error !== "object" || depth > 4) return undefined;
  const { code, errors, cause } = error as { code?: unknown; errors?: unknown; cause?: unknown };
  if (typeof code === "string" && NETWORK_ERROR_CODES.has(code)) return code;
  if (Array.isArray(errors)) {
    for (const inner of errors) {
      const found = networkErrorCode(inner, depth + 1);
      if (found) return found;
    }
  }
  return cause === undefined ? undefined : networkErrorCode(cause, depth + 1);
}
