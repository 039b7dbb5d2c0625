import { CeleryTsError } from "../errors.ts";

/**
 * The error of any call on a transport, backend or delivery after `close()` (rule 7 of
 * docs/writing-a-transport.md): code `CLOSED`, not retryable.
 *
 * @param pkg the driver's name, shown as `[celery-ts:<pkg>]`: `"redis"`
 * @param what what was closed, in words: `"Redis transport"`
 */
export function closedError(pkg: string, what: string): CeleryTsError {
  return new CeleryTsError("CLOSED", `the ${what} is closed`, { pkg });
}

/**
 * The error of a broker that cannot be reached or a connection that dropped: code `CONNECTION`,
 * retryable unless said otherwise (a refused command, a failure that trying again cannot fix).
 *
 * @param pkg the driver's name, shown as `[celery-ts:<pkg>]`
 * @param message what failed and what to do about it
 */
export function connectionError(
  pkg: string,
  message: string,
  options: { cause?: unknown; retryable?: boolean } = {},
): CeleryTsError {
  return new CeleryTsError("CONNECTION", message, {
    pkg,
    cause: options.cause,
    retryable: options.retryable ?? true,
  });
}

/** A bad option or URL: code `CONFIG`. The message says what to do. */
export function configError(pkg: string, message: string, cause?: unknown): CeleryTsError {
  return new CeleryTsError("CONFIG", message, { pkg, cause });
}
