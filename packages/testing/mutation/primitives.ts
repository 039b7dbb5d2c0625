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
        return { ...primitives, ack: async () => {} };
      case "requeue-dropped":
        return { ...primitives, requeue: async () => {} };
      case "delivered-twice":
        return {
          ...primitives,
          open: (queues) => {
            const opened = primitives.open(queues);
            const sources = (Array.isArray(opened) ? opened : [opened]) as MessageSource<H>[];
            return sources.map((source) => twice(source));
          },
        };
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
