import type { MutantName } from "../src/mutants.ts";

/** The shared suites that designed killers live in. */
export type Suite = "transport" | "worker";

/**
 * The shared tests designed to kill each mutant, per suite (regular expressions on the test
 * name, as vitest's -t). The mutation check runs only these under the mutant, each suite's on its
 * own: a suite whose designed killers pass with the mutant means they no longer catch it, and the
 * check fails, naming them. A suite with no designed killer for a mutant is not run for it (the
 * worker never requeues a message itself: a dropped requeue is the transport suite's to catch).
 * `pnpm mutation --full` runs the whole transport and worker suites instead.
 */
export const KILLERS: Record<MutantName, Record<Suite, string[]>> = {
  "ack-does-nothing": {
    transport: ["23: forgets an acknowledged message"],
    // A task that stores no result: the message that comes back cannot be recognised as done
    // (the worker skips only a redelivered task whose result is ready), so it runs again.
    worker: ["runs a task that stores no result once"],
  },
  "requeue-dropped": {
    transport: ["24: a message rejected with requeue", "21, 24: redelivers a message"],
    worker: [],
  },
  "delivered-twice": {
    transport: ["15, 20: hands each message to one consumer", "3: delivers a published"],
    worker: ["runs a task longer than the redelivery window once"],
  },
  "lease-never-renewed": {
    transport: ["15: keeps a held message from every other consumer"],
    worker: ["runs a task longer than the redelivery window once"],
  },
  "reject-loses-reason": {
    transport: ["25, 28: keeps dead letters with their reason"],
    worker: ["dead-letters a task that raises Reject, with its reason"],
  },
};

/** vitest's -t for `mutant`'s killers in `suite`, inside the describe named by `scope`. */
export function killerFilter(mutant: MutantName, suite: Suite, scope: string): string {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return `${escape(scope)}.*(${KILLERS[mutant][suite].map(escape).join("|")})`;
}
