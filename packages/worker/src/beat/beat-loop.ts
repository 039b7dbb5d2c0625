import type { Logger } from "@celery-ts/core";
import { leadPass, readSchedule, type PassContext, type Snapshot } from "./leader-pass.ts";

/** What the loop of one beat instance runs with. */
export interface LoopContext {
  pass: PassContext;
  logger: Logger;
  /** How often a follower looks whether the lease was released early (ms). */
  followerPollMs: number;
  stopping(): boolean;
  /** Resolves at `until` (epoch ms), or sooner when the beat stops. */
  sleep(until: number): Promise<void>;
}

/**
 * One turn as leader, begun at `began`: sends what is due, renews the lease, and tells when to
 * wake next.
 *
 * The lease is renewed after a send, counting from when the turn began (before its store reads
 * and writes), so that the key expires within its ttl of the last send whenever the leader dies:
 * before the renewal (the previous one counted from before the previous send) or after it. While
 * ticks come at least every half of the key's ttl, only sends renew it; otherwise a renewal
 * without a send comes a third of the way in, and counts from then (no tick was due between the
 * last send and then).
 */
async function leadTurn(
  ctx: LoopContext,
  token: number,
  began: number,
  read?: Snapshot,
): Promise<number> {
  const { lease } = ctx.pass;
  const { due, sent } = await leadPass(ctx.pass, token, read);
  if (sent) await lease.renew(began);
  else if (Date.now() >= lease.from + lease.keyTtlMs / 3) await lease.renew(Date.now());
  // Lost it: look for the lease as a follower at once.
  if (lease.token === undefined) return Date.now();
  const renewAt = lease.from + lease.keyTtlMs / 3;
  return due !== undefined && due <= lease.from + lease.keyTtlMs / 2 ? due : renewAt;
}

/**
 * One turn as follower: wakes when the lease runs out by the store's clock (its ttl, read now,
 * counted from before the read: never late, and a try that comes a moment early reads again), and
 * now and then meanwhile, in case its holder gives it up on shutdown. `expiring`: the wake is when
 * the lease runs out.
 */
async function followTurn(ctx: LoopContext): Promise<{ wake: number; expiring: boolean }> {
  const asked = Date.now();
  const remaining = await ctx.pass.lease.remaining();
  // Free: released or run out since the try. Try again at once.
  if (remaining === undefined) return { wake: asked, expiring: true };
  const poll = Date.now() + ctx.followerPollMs;
  return { wake: Math.min(asked + remaining, poll), expiring: asked + remaining <= poll };
}

/**
 * Tries to take the lease; when the lease should be free (`expiring`), reads the schedule at the
 * same time, so that a new leader sends what is due one store round trip sooner.
 */
async function take(ctx: LoopContext, expiring: boolean): Promise<Snapshot | false | undefined> {
  const { lease } = ctx.pass;
  if (!expiring) return (await lease.acquire()) && undefined;
  const [taken, read] = await Promise.all([lease.acquire(), readSchedule(ctx.pass)]);
  return taken && read;
}

/** The beat's loop: lead when holding (or able to take) the lease, follow otherwise. */
export async function runBeatLoop(ctx: LoopContext): Promise<void> {
  const { lease } = ctx.pass;
  let failing = false;
  let expiring = true;
  while (!ctx.stopping()) {
    const began = Date.now();
    let wake = began + ctx.followerPollMs;
    try {
      const read = lease.token === undefined ? await take(ctx, expiring) : undefined;
      const token = lease.token;
      if (read !== false && token !== undefined) {
        wake = await leadTurn(ctx, token, began, read);
      } else {
        ({ wake, expiring } = await followTurn(ctx));
      }
      if (failing) ctx.logger.info("beat: the store is reachable again");
      failing = false;
    } catch (error) {
      if (!failing) {
        ctx.logger.warn("beat: the store failed; retrying", {
          error: String((error as Error)?.message ?? error),
        });
      }
      failing = true;
    }
    if (!ctx.stopping()) await ctx.sleep(wake);
  }
}
