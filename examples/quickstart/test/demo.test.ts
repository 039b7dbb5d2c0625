import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { spawnCollecting } from "@celery-ts/testing";
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

// The README's second command: `./dev demo:dashboard` (pnpm demo:dashboard) runs the same batch with the dashboard open.
// (In this file, after the first: both use the demo's .data folder.)
it("serves the dashboard of the run with ./dev demo:dashboard, until Ctrl-C", async () => {
  const root = JSON.parse(readFileSync(join(here, "../../package.json"), "utf8")) as Scripts;
  const own = JSON.parse(readFileSync(join(here, "package.json"), "utf8")) as Scripts;
  expect(readFileSync(join(here, "../../README.md"), "utf8")).toContain("./dev demo:dashboard");
  expect(root.scripts["demo:dashboard"]).toContain("example-quickstart demo:dashboard");
  expect(own.scripts["demo:dashboard"]).toBe("node src/demo.ts --dashboard");

  const child = spawnCollecting(process.execPath, ["src/demo.ts", "--dashboard"], {
    cwd: here,
    env: { ...process.env, DASHBOARD_PORT: "0" },
  });
  try {
    const printed = () => child.output;
    const [, url] = await child.waitForOutput(/Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/, 120_000);
    const page = await fetch(url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>celery-ts dashboard</title>");
    await child.waitForOutput("The dashboard keeps the run's history", 120_000);
    // The run's 60 tasks, seen through the worker's events, and the dashboard still serves.
    const tasks = await waitFor(printed, async () => {
      const list = (await (await fetch(`${url}api/tasks?limit=1000`)).json()) as {
        state: string;
      }[];
      const done = list.filter((t) => t.state === "SUCCESS" || t.state === "FAILURE");
      return done.length === 60 ? list : undefined;
    });
    expect(tasks.filter((t) => t.state === "FAILURE")).toHaveLength(5);
    // Ctrl-C: the worker drains and the demo exits 0 (a loaded machine may take a while).
    expect(await child.stop("SIGINT", 60_000)).toMatchObject({ code: 0, signal: null });
  } finally {
    await child.stop("SIGKILL");
  }
}, 150_000);

interface Scripts {
  scripts: Record<string, string>;
}

const here = join(import.meta.dirname, "..");

/** Polls `check` until it gives a value, for at most 120 s (the demo's run included). */
async function waitFor<T>(
  printed: () => string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out; the demo printed:\n${printed()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
