import type { DeliveryLimitOptions, Transport } from "@celery-ts/core";
import { describe } from "vitest";
import { batchTests } from "./internal/transport-batch.ts";
import { consumingTests } from "./internal/transport-consuming.ts";
import { deadLetterTests } from "./internal/transport-dead-letters.ts";
import { transportSuiteContext } from "./internal/transport-context.ts";
import { lifecycleTests } from "./internal/transport-lifecycle.ts";
import { liveTests } from "./internal/transport-live.ts";
import { publishingTests } from "./internal/transport-publishing.ts";
import { settlingTests } from "./internal/transport-settling.ts";

export { ABSENCE_MARGIN_SECONDS, PRESENCE_WAIT_SECONDS } from "./internal/transport-context.ts";

/** How the suite reaches one implementation. */
export interface TransportHarness {
  /**
   * A new connection to the same broker (server, file or in-memory broker), built with `options`
   * (dead-letter bounds, `maxMessageBytes`) when the suite gives them: pass them to the driver.
   */
  create(options?: DeliveryLimitOptions): Transport | Promise<Transport>;
  /** Puts raw bytes on a queue as a foreign or broken producer would. */
  injectRaw(queue: string, raw: string): Promise<void>;
  /**
   * A connection to a broker that cannot be reached (a closed port), for rule 32: its calls must
   * fail with a retryable `CONNECTION` error, within the test's timeout. Leave it out for a
   * broker that cannot be unreachable (in-process, a local file); the test is then skipped.
   */
  createUnreachable?(): Transport | Promise<Transport>;
  /**
   * A connection to the same broker that sees new messages through its wake-ups alone: it polls
   * at most once a minute (a `pollInterval` of 60 s or more), longer than the suite waits. For
   * the rule 12 test that a wake-up arriving while a take is under way is not lost. Leave it out
   * for a broker that has no wake-ups (a long poll, as SQS); the test is then skipped.
   */
  createWakeOnly?(): Transport | Promise<Transport>;
  /**
   * Rules the broker cannot keep, by rule number, each with the reason: their tests are reported
   * as skipped with it (never passed). SQS, for example, cannot purge only waiting messages.
   */
  deviations?: Readonly<Record<string, string>>;
  /**
   * Per-test timeout, in seconds. The suite's waits are bounded by the transport's
   * `capabilities.redeliveryWindow` plus {@link PRESENCE_WAIT_SECONDS}, several times in a test.
   * @default 60
   */
  testTimeoutSeconds?: number;
}

/**
 * The behaviour every transport must have: one or more tests per MUST rule of
 * docs/writing-a-transport.md (each test's name starts with its rule number). Absence is proven
 * by waiting the transport's declared `capabilities.redeliveryWindow` plus
 * {@link ABSENCE_MARGIN_SECONDS}; a capability the transport lacks skips its tests, with the
 * reason.
 */
export function transportConformance(name: string, harness: TransportHarness): void {
  describe(
    `Transport conformance: ${name}`,
    { timeout: (harness.testTimeoutSeconds ?? 60) * 1000 },
    () => {
      const ctx = transportSuiteContext(harness);
      lifecycleTests(ctx);
      publishingTests(ctx);
      batchTests(ctx);
      consumingTests(ctx);
      liveTests(ctx);
      settlingTests(ctx);
      deadLetterTests(ctx);
    },
  );
}
