import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The mutation check runs each package's suites with this config (`--root <package>`): the
// setup file patches the driver kit at load.
export default defineConfig({
  test: {
    setupFiles: [fileURLToPath(new URL("./setup.ts", import.meta.url))],
  },
});
