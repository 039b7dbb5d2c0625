import {
  CeleryTsError,
  type Rate,
  type RateLimit,
  type RateLimitGroup,
  type TaskMessage,
} from "@celery-ts/core";

/** A rate in numbers: `limit` runs per `periodMs`. */
export interface ParsedRate {
  limit: number;
  periodMs: number;
}

const PERIODS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * Reads Celery's rate strings: `"10/s"`, `"100/m"`, `"1000/h"`, or a number (per second). Zero,
 * `"0"` and null are no limit (undefined). Anything else is a CONFIG error naming the forms.
 */
export function parseRate(rate: Rate, task: string): ParsedRate | undefined {
  if (rate === null) return undefined;
  const match = typeof rate === "number" ? null : /^\s*([\d.]+)\s*(?:\/\s*([smh]))?\s*$/.exec(rate);
  const limit = typeof rate === "number" ? rate : Number(match?.[1]);
  const periodMs = PERIODS[match?.[2] ?? "s"]!;
  if ((typeof rate === "string" && !match) || !Number.isFinite(limit) || limit < 0) {
    throw new CeleryTsError(
      "CONFIG",
      `task ${task}: rate limit ${JSON.stringify(rate)} is not a rate; write "10/s", "100/m", ` +
        '"1000/h" or a number per second (0 or null for no limit)',
      { pkg: "worker" },
    );
  }
  return limit === 0 ? undefined : { limit, periodMs };
}

/** A task's `rateLimit` option in one shape. */
export interface RateRule {
  rate: ParsedRate | undefined;
  scope: "worker" | "fleet";
  groupBy: RateLimitGroup | undefined;
}

export function rateRule(option: RateLimit | undefined, task: string): RateRule {
  if (option === undefined || option === null || typeof option !== "object") {
    return { rate: parseRate(option ?? null, task), scope: "worker", groupBy: undefined };
  }
  const scope = option.scope ?? "worker";
  if (scope !== "worker" && scope !== "fleet") {
    throw new CeleryTsError(
      "CONFIG",
      `task ${task}: rate limit scope is "worker" or "fleet", not ${JSON.stringify(scope)}`,
      { pkg: "worker" },
    );
  }
  return { rate: parseRate(option.rate, task), scope, groupBy: option.groupBy };
}

/** The group a message belongs to under `groupBy` ("" when none, or the key is missing). */
export function groupOf(message: TaskMessage, groupBy: RateLimitGroup | undefined): string {
  if (!groupBy) return "";
  let key: unknown;
  if (typeof groupBy === "function") {
    key = groupBy({ args: message.args, kwargs: message.kwargs, headers: message.headers });
  } else if ("arg" in groupBy) key = message.args[groupBy.arg];
  else if ("kwarg" in groupBy) key = message.kwargs[groupBy.kwarg];
  else key = (message.headers as Record<string, unknown>)[groupBy.header];
  if (key === undefined || key === null) return "";
  return typeof key === "string" ? key : JSON.stringify(key);
}

/**
 * How a fleet counts a rate in the store: fixed windows of `windowMs` allowing `allowance` runs
 * each. A slow rate gets one run per window of `period / limit` (evenly spaced, as Celery's token
 * bucket); a fast one (more than 10/s) one window per period, so the store is asked once a run,
 * never more often than the rate itself.
 */
export function fleetWindow(rate: ParsedRate): { windowMs: number; allowance: number } {
  const spacing = rate.periodMs / rate.limit;
  if (spacing >= 100) return { windowMs: spacing, allowance: 1 };
  return { windowMs: rate.periodMs, allowance: Math.floor(rate.limit) };
}
