import { defineConfig } from "vitest/config";

// Tests bound their own waits: vitest's 5 s default would cut those short on a loaded machine
// (CI runs at load 20-30), so the test's own bound, not the runner's, decides when it fails.
export default defineConfig({ test: { testTimeout: 30_000, hookTimeout: 30_000 } });
