import { appendFileSync } from "node:fs";
import type { Delivery, Transport } from "@celery-ts/core";

/**
 * The named mutants of the mutation check (`scripts/mutation-check.ts`): each breaks one rule of
 * the transport contract in the transport the suites create, and the suites must fail. Selected
 * by the `CELERY_TS_MUTANT` environment variable (and `CELERY_TS_MUTANT_LEVEL`: `primitives`
 * or `interface`); without them, transports are left alone.
 */
export const MUTANTS = {
  /** `ack()` resolves and does nothing: the broker never forgets the message. */
  "ack-does-nothing": "ack() resolves without acknowledging",
  /** `reject({ requeue: true })` forgets the message instead of putting it back. */
  "requeue-dropped": "reject({ requeue: true }) drops the message",
  /** Every delivery is handed to the consumer twice. */
  "delivered-twice": "each message is delivered twice",
  /** The lease (visibility timeout) of an outstanding delivery is never extended. */
  "lease-never-renewed": "leases are never renewed",
  /** `reject({ requeue: false, reason })` dead-letters without the reason. */
  "reject-loses-reason": "reject() drops the reason",
} as const;

export type MutantName = keyof typeof MUTANTS;

/** The mutant this process runs under, or undefined. */
export function activeMutant(): MutantName | undefined {
  const name = process.env.CELERY_TS_MUTANT;
  if (!name) return undefined;
  if (!(name in MUTANTS)) {
    throw new Error(
      `CELERY_TS_MUTANT=${name} is not a mutant; the mutants are: ${Object.keys(MUTANTS).join(", ")}`,
    );
  }
  return name as MutantName;
}

function mutateDelivery(delivery: Delivery, mutant: MutantName): Delivery {
  const { ack, reject } = delivery;
  switch (mutant) {
    case "ack-does-nothing":
      return { ...delivery, ack: async () => {} };
    case "requeue-dropped":
      return {
        ...delivery,
        reject: (options) => (options.requeue ? ack() : reject(options)),
      };
    case "reject-loses-reason":
      return { ...delivery, reject: ({ requeue }) => reject({ requeue }) };
    default:
      return delivery;
  }
}

/**
 * The transport as the mutant breaks it, at the Transport interface, for a transport not built
 * on the driver kit (`CELERY_TS_MUTANT_LEVEL=interface`): what the suites and the worker see.
 * Transports on the kit are mutated in their primitives instead (mutation/setup.ts). A lease
 * lives below the interface: `lease-never-renewed` applies to kit transports only.
 */
export function mutateTransport(transport: Transport): Transport {
  const mutant = activeMutant();
  if (!mutant || process.env.CELERY_TS_MUTANT_LEVEL !== "interface") return transport;
  if (mutant === "lease-never-renewed") return transport;
  const log = process.env.CELERY_TS_MUTANT_LOG;
  if (log) appendFileSync(log, `${mutant} ${transport.name} interface\n`);
  const consume: Transport["consume"] = (queues, onDelivery, options) =>
    transport.consume(
      queues,
      (delivery) => {
        const mutated = mutateDelivery(delivery, mutant);
        onDelivery(mutated);
        if (mutant === "delivered-twice") onDelivery(mutated);
      },
      options,
    );
  return Object.assign(Object.create(transport) as Transport, { consume });
}
