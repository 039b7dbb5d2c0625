import { CeleryTsError } from "@celery-ts/core";

/** `--broker-connection-retry-on-startup`, as `celery-ts worker` and `celery-ts beat` read it. */
export const STARTUP_OPTIONS = {
  "broker-connection-retry-on-startup": { type: "string" },
} as const;

export const STARTUP_USAGE = `      --broker-connection-retry-on-startup <on|off>
                              wait for an unreachable broker or backend at startup, retrying with
                              backoff; off: exit at once with an error [default on]`;

/** The flag's value: `on`/`off` (or true/false, yes/no, 1/0); absent means on. */
export function retryOnStartupOption(values: {
  "broker-connection-retry-on-startup"?: string | undefined;
}): boolean {
  const flag = "broker-connection-retry-on-startup";
  const value = values[flag];
  if (value === undefined) return true;
  const text = value.trim().toLowerCase();
  if (["on", "true", "yes", "1"].includes(text)) return true;
  if (["off", "false", "no", "0"].includes(text)) return false;
  throw new CeleryTsError("CONFIG", `--${flag} must be on or off, got "${value}"`, {
    pkg: "worker",
  });
}
