import { appendFileSync } from "node:fs";
import type { DriverPrimitives, MessageSource, TakenMessage } from "@celery-ts/core/driver";
import type { MutantName } from "../src/mutants.ts";

/** Records, for the mutation check, that the mutant changed something in this process. */
export function recordApplied(mutant: MutantName, where: string): void {
  const log = process.env.CELERY_TS_MUTANT_LOG;
  if (log) appendFileSync(log, `${mutant} ${where}\n`);
}

function twice<H>(source: MessageSource<H>): MessageSource<H> {
  return {
    ...source,
    take: async (request) => {
      const batch = await source.take(request);
      const copies = batch.messages.map((taken): TakenMessage<H> => ({
        ...taken,
        ...(taken.deliveryTag !== undefined && { deliveryTag: `${taken.deliveryTag}-again` }),
      }));
      return { ...batch, messages: batch.messages.flatMap((taken, i) => [taken, copies[i]!]) };
    },
  };
}

/** A source whose `ackAndTake()` writes none of its acks (nor their results), only its take. */
function acksDropped<H>(source: MessageSource<H>): MessageSource<H> {
  if (!source.ackAndTake) return source;
  return {
    ...source,
    ackAndTake: async (_acks, request) =>
      request.max > 0 ? source.take(request) : { messages: [] },
  };
}

/** What a driver's `open()` returned (one source or several), each source changed by `change`. */
function mapSources<H>(
  opened: ReturnType<DriverPrimitives<H>["open"]>,
  change: (source: MessageSource<H>) => MessageSource<H>,
): MessageSource<H>[] {
  const sources = (Array.isArray(opened) ? opened : [opened]) as MessageSource<H>[];
  return sources.map(change);
}

/** A primitive whose body is empty: breaking it changes nothing. */
function doesNothing(fn: (...args: never[]) => unknown): boolean {
  return /^(async\s+)?(function\s*)?[\w$]*\s*\([^)]*\)\s*(=>\s*)?\{\s*\}$/.test(
    fn.toString().trim(),
  );
}

/**
 * A driver's primitives as the mutant breaks them: the real broker writes, minus one. Returns
 * them unchanged when the driver has nothing the mutant applies to (no lease to renew).
 */
export function mutatePrimitives<H>(
  primitives: DriverPrimitives<H>,
  mutant: MutantName,
  pkg: string,
): DriverPrimitives<H> {
  const mutated = ((): DriverPrimitives<H> | undefined => {
    switch (mutant) {
      case "ack-does-nothing":
        // An equivalent mutant where the broker forgets a message when it is taken (memory):
        // the check then breaks ack() at the Transport interface instead.
        if (doesNothing(primitives.ack)) return undefined;
        // Both ways an ack is written: ack(), and the acks an ackAndTake() carries (where a
        // source has it, the kit writes every ack that way), whose take still goes on.
        return {
          ...primitives,
          ack: async () => {},
          open: (queues) => mapSources(primitives.open(queues), acksDropped),
        };
      case "requeue-dropped":
        return { ...primitives, requeue: async () => {} };
      case "delivered-twice":
        return { ...primitives, open: (queues) => mapSources(primitives.open(queues), twice) };
      case "lease-never-renewed":
        if (!primitives.extendLeases) return undefined;
        return { ...primitives, extendLeases: async () => {} };
      case "reject-loses-reason":
        return { ...primitives, deadLetter: (handle) => primitives.deadLetter(handle, "rejected") };
    }
  })();
  if (!mutated) return primitives;
  recordApplied(mutant, `${pkg} primitives`);
  return mutated;
}
