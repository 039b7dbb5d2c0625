import { CeleryTsError, type CeleryTsErrorOptions, type ErrorCode } from "@celery-ts/core";

/** A `CeleryTsError` raised by this package: its message starts with `[celery-ts:client]`. */
export function clientError(
  code: ErrorCode,
  message: string,
  options: Omit<CeleryTsErrorOptions, "pkg"> = {},
): CeleryTsError {
  return new CeleryTsError(code, message, { ...options, pkg: "client" });
}

export function closedError(): CeleryTsError {
  return clientError("CLOSED", "the client is closed; create a new one with createClient()");
}
