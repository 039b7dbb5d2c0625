import { createHash } from "node:crypto";
import { encodeJson, type CoordinationStore, type UniqueOptions } from "@celery-ts/core";
import { clientError } from "./errors.ts";

/** How many times a claim is tried when the holder's key expires between two steps. */
const ATTEMPTS = 3;

/** The store key for one unique send: the task's name and the key (given, or a hash of the args). */
export function uniqueKey(
  name: string,
  unique: UniqueOptions,
  args: unknown[],
  kwargs: Record<string, unknown>,
): string {
  if (typeof unique.ttl !== "number" || !Number.isFinite(unique.ttl) || unique.ttl <= 0) {
    throw clientError(
      "CONFIG",
      `task ${name}: unique.ttl must be a number of seconds > 0, got ${String(unique.ttl)}`,
    );
  }
  const given = typeof unique.key === "function" ? unique.key(...args) : unique.key;
  if (given !== undefined && (typeof given !== "string" || given === "")) {
    throw clientError("CONFIG", `task ${name}: a unique key must be a non-empty string`);
  }
  const key =
    given ??
    createHash("sha256")
      .update(encodeJson([args, kwargs]))
      .digest("base64url");
  return `unique:${name}:${key}`;
}

/**
 * Claims `key` for the task `id` for `ttl` seconds. Returns undefined when this send holds it
 * (publish it), or the id of the task that already does (a duplicate: publish nothing). With
 * `extend`, a duplicate restarts the holder's time to live (debounce).
 */
export async function claimUnique(
  store: CoordinationStore,
  key: string,
  id: string,
  unique: UniqueOptions,
): Promise<string | undefined> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (await store.setIfAbsent(key, id, { ttl: unique.ttl })) return undefined;
    const holder = await store.get(key);
    if (holder === undefined) continue; // expired meanwhile: try to claim it again
    if (unique.extend) await store.compareAndSet(key, holder, holder, { ttl: unique.ttl });
    return holder;
  }
  throw clientError(
    "CONNECTION",
    `could not claim the unique key ${key}: it kept expiring between two steps; try again`,
    { retryable: true },
  );
}
