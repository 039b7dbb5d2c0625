import type { CoordinationStore, Logger } from "@celery-ts/core";
import type { BeatKeys } from "./beat-schedule.ts";

export interface LeaderLeaseOptions {
  store: CoordinationStore;
  keys: BeatKeys;
  /** Unique per instance: the lease's value names it. */
  instanceId: string;
  /** `leaseSeconds` in ms: the longest the fleet goes without a send when its leader dies. */
  leaseMs: number;
  logger: Logger;
}

/**
 * The leader lease of one beat instance. The lease is a store key with a ttl that only its holder
 * renews; each new holder takes a fencing token from a counter, and every tick record is written
 * fenced by it, so a holder that was paused past its lease cannot record (and so cannot send) once
 * a newer one holds the token.
 *
 * Its timing bounds the silence after a leader dies. The key lives `keyTtlMs`, two thirds of the
 * lease, counted from the leader's last send (a renewal after a send counts from a moment before
 * the send, not from when the renewal reached the store); the last third is the takeover: a
 * follower reads when the key runs out, tries to take it at that moment, and sends what is due at
 * once. So the next send comes within the lease of the last one, however the leader died.
 */
export interface LeaderLease {
  /** The fencing token while this instance leads by its own clock; undefined otherwise. */
  readonly token: number | undefined;
  /** How long the key lives from the start of a term or the send it is renewed from (ms). */
  readonly keyTtlMs: number;
  /** Where the current term counts from, by this instance's clock (epoch ms). */
  readonly from: number;
  /** Takes the lease if it is free; resolves to whether this instance leads. */
  acquire(): Promise<boolean>;
  /**
   * Renews the held lease to last `keyTtlMs` from `since` (epoch ms, not in the future): a moment
   * at or before the last send, or now. Resolves to whether this instance still leads.
   */
  renew(from: number): Promise<boolean>;
  /**
   * The milliseconds left of whoever holds the lease, by the store's clock, as of the call
   * (`Infinity` if the key has no expiry); undefined when it is free.
   */
  remaining(): Promise<number | undefined>;
  /** Gives the lease up at once (on shutdown), so that another instance takes over now. */
  release(): Promise<void>;
}

/** The share of the lease the lease key lives; the rest is the next leader's to take over. */
const KEY_SHARE = 2 / 3;

export function createLeaderLease(options: LeaderLeaseOptions): LeaderLease {
  const { store, keys, instanceId, leaseMs, logger } = options;
  const keyTtlMs = Math.round(leaseMs * KEY_SHARE);
  /**
   * Stop acting this long before the key's end by our clock: covers a token check that comes just
   * before a publish (and a clock that runs a little slower than the store's).
   */
  const safetyMs = Math.min(200, keyTtlMs / 10);
  let token: number | undefined;
  let value: string | undefined;
  /** By our clock; the store's ttl started no earlier. */
  let from = 0;

  const lose = (reason: string): void => {
    if (token !== undefined) logger.warn("beat: lost the leader lease", { token, reason });
    token = undefined;
    value = undefined;
  };
  const current = (): number | undefined => {
    if (token !== undefined && Date.now() >= from + keyTtlMs - safetyMs) {
      lose("not renewed in time");
    }
    return token;
  };

  return {
    get token() {
      return current();
    },
    keyTtlMs,
    get from() {
      return from;
    },
    async acquire() {
      if (value !== undefined) return current() !== undefined;
      const startedAt = Date.now();
      // Two steps: the key (ours until it runs out), then a token. A key still ours (a try that
      // failed between them, or a term we gave up by our clock) is taken again, with a new ttl.
      const ttl = { ttl: keyTtlMs / 1000 };
      const taken =
        (await store.setIfAbsent(keys.leader, instanceId, ttl)) ||
        (await store.compareAndSet(keys.leader, instanceId, instanceId, ttl));
      if (!taken) return false;
      token = await store.increment(keys.fence);
      value = instanceId;
      from = startedAt;
      logger.info("beat: leading", { token, instance: instanceId });
      return true;
    },
    async renew(since) {
      if (value === undefined || current() === undefined) return false;
      // Sent now, the ttl ends keyTtlMs after `since` at the earliest: the store starts counting
      // no sooner than this.
      const ttlMs = since + keyTtlMs - Date.now();
      if (ttlMs <= 0) {
        lose("not renewed in time");
        return false;
      }
      if (await store.compareAndSet(keys.leader, value, value, { ttl: ttlMs / 1000 })) {
        // The store's ttl was replaced: it ends keyTtlMs after `since` (at the earliest).
        from = since;
        return current() !== undefined;
      }
      lose("another instance holds it");
      return false;
    },
    async remaining() {
      const seconds = await store.ttl(keys.leader);
      return seconds === undefined ? undefined : seconds * 1000;
    },
    async release() {
      const held = value;
      token = undefined;
      value = undefined;
      if (held !== undefined) await store.deleteIfEquals(keys.leader, held);
    },
  };
}
