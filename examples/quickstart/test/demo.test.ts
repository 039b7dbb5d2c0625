import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

// The README's first command runs this demo: it must keep working as a new user sees it.
it("runs the quickstart batch to its summary on the SQLite default", async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(import.meta.dirname, "../src/demo.ts")],
    {
      timeout: 120_000,
    },
  );
  expect(stdout).toContain("60/60");
  expect(stdout).toMatch(/succeeded: 55 \(3 of them after retries\)/);
  expect(stdout).toMatch(/failed: {4}5/);
  expect(stdout).toContain('RangeError: "12.5O" is not a price');
  expect(stdout).toContain("GatewayBusyError: gateway busy for order 18");
  expect(stdout).toContain("Worker stopped (exit code 0).");
}, 150_000);
