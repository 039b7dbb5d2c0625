// Loaded by mutation/vitest.config.ts, the mutation check's config: patches the driver kit at
// load, so that every transport built on it (createConsumerKit) gets its primitives mutated.
import type * as ConsumerKit from "../../core/src/driver/consumer-kit.ts";
import { vi } from "vitest";
import { activeMutant } from "../src/mutants.ts";
import { mutatePrimitives } from "./primitives.ts";

vi.mock("../../core/src/driver/consumer-kit.ts", async (importOriginal) => {
  const original = await importOriginal<typeof ConsumerKit>();
  const mutant = activeMutant();
  if (!mutant || process.env.CELERY_TS_MUTANT_LEVEL !== "primitives") return original;
  const createConsumerKit: typeof original.createConsumerKit = (options) =>
    original.createConsumerKit({
      ...options,
      primitives: mutatePrimitives(options.primitives, mutant, options.pkg),
    });
  return { ...original, createConsumerKit };
});
