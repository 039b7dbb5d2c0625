import type { ParseArgsConfig } from "node:util";

/** `celery-ts worker` (and `dead-letters`) flags of dead letters and the message size limit. */
export const DELIVERY_LIMIT_OPTIONS = {
  "dead-letters": { type: "string" },
  "dead-letter-max-count": { type: "string" },
  "dead-letter-max-bytes": { type: "string" },
  "dead-letter-max-age": { type: "string" },
  "max-message-bytes": { type: "string" },
} as const satisfies ParseArgsConfig["options"];

export const DELIVERY_LIMIT_USAGE = `      --dead-letters <on|off>        keep rejected messages with their reason [default on]
      --dead-letter-max-count <n>    dead letters kept per queue, the oldest dropped [default 10000]
      --dead-letter-max-bytes <n>    bytes of dead letters kept per queue [default 104857600]
      --dead-letter-max-age <s>      seconds a dead letter is kept [default 1209600, 14 days]
      --max-message-bytes <n>        larger messages are dead-lettered, unread where the broker allows [default 16777216]`;

/** Flag to the broker URL's query parameter of the same meaning (see the drivers' URLs). */
const PARAMETERS: Record<keyof typeof DELIVERY_LIMIT_OPTIONS, string> = {
  "dead-letters": "dead_letters",
  "dead-letter-max-count": "dead_letter_max_count",
  "dead-letter-max-bytes": "dead_letter_max_bytes",
  "dead-letter-max-age": "dead_letter_max_age",
  "max-message-bytes": "max_message_bytes",
};

/**
 * The broker URL with the flags given added as its query parameters, so that the flags and the
 * URL are one way of saying it: the driver reads and checks them (a flag wins over the URL).
 */
export function withDeliveryLimits(
  broker: string,
  values: Record<string, string | boolean | undefined>,
): string {
  const given = Object.entries(PARAMETERS).filter(([flag]) => typeof values[flag] === "string");
  if (given.length === 0) return broker;
  if (broker.startsWith("memory://")) {
    throw new Error("--dead-letter* and --max-message-bytes need a broker URL, not memory://");
  }
  const at = broker.indexOf("?");
  const query = new URLSearchParams(at < 0 ? "" : broker.slice(at + 1));
  for (const [flag, parameter] of given) query.set(parameter, String(values[flag]));
  return `${at < 0 ? broker : broker.slice(0, at)}?${query.toString()}`;
}
