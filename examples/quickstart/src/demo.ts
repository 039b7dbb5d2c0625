// The quickstart demo: starts a worker process on the embedded SQLite broker, sends a batch of
// tasks (some fail, some retry), shows progress, and prints a summary.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@celery-ts/client";
import { TaskFailedError } from "@celery-ts/core";
import { startWorkerProcess } from "@celery-ts/worker";
import { add, charge, parsePrice } from "./tasks.ts";

const here = join(import.meta.dirname, "..");
const dataDir = join(here, ".data");
rmSync(dataDir, { recursive: true, force: true });
mkdirSync(dataDir, { recursive: true });
const url = "sqlite:///.data/quickstart.db";
process.chdir(here);

// `pnpm demo --dashboard`: the dashboard shows the run live, and stays open until Ctrl-C.
const withDashboard = process.argv.includes("--dashboard");
const logFile = join(dataDir, "worker.log");
console.log(`Starting a worker: celery-ts worker --app src/tasks.ts --processes 2, on ${url}`);
console.log(`(its log: ${logFile})`);
const worker = startWorkerProcess({
  app: "src/tasks.ts",
  broker: url,
  backend: url,
  processes: 2,
  logFile,
  events: withDashboard,
});
if (withDashboard) {
  // Loaded only when asked for: the demo runs without the dashboard package too.
  const { startDashboard } = await import("@celery-ts/dashboard");
  // DASHBOARD_PORT moves it off 5555 (0: any free port; the line below names it).
  const port = Number(process.env.DASHBOARD_PORT ?? 5555);
  const dashboard = await startDashboard({ broker: url, backend: url, port });
  console.log(`Dashboard: ${dashboard.url} (open it in a browser; Ctrl-C stops the demo)`);
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.once(signal, () => void dashboard.close());
}

const client = createClient({ broker: url, backend: url });
const tasks = {
  add: client.task(add),
  charge: client.task(charge),
  parsePrice: client.task(parsePrice),
};

const total = 60;
const started = Date.now();
const sent = await Promise.all(
  Array.from({ length: total }, (_, i) => {
    // Busy 0 or 2 times (retried, then fine), or 4 times: more than its 3 retries, so it fails.
    if (i % 6 === 0) return tasks.charge.delay(i, i % 24 === 18 ? 4 : i % 4);
    if (i % 10 === 3) return tasks.parsePrice.delay(i % 20 === 3 ? "12.5O" : "12.50");
    return tasks.add.delay(i, i * 2);
  }),
);
console.log(
  `Sent ${total} tasks in ${Date.now() - started} ms; the worker runs them in the background.\n`,
);

const counts = { succeeded: 0, failed: 0 };
const failures: string[] = [];
let retried = 0;
const interactive = process.stdout.isTTY;
const draw = (): void => {
  const done = counts.succeeded + counts.failed;
  const width = 30;
  const filled = Math.round((done / total) * width);
  const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}  ok ${counts.succeeded}  failed ${counts.failed}`;
  if (interactive) process.stdout.write(`\r${bar}`);
  else if (done % 15 === 0) console.log(bar);
};

await Promise.all(
  sent.map(async (result) => {
    try {
      const value = await result.get({ timeout: 60 });
      counts.succeeded++;
      if (typeof value === "object" && value !== null && "attempts" in value && value.attempts > 1)
        retried++;
    } catch (error) {
      if (!(error instanceof TaskFailedError)) throw error;
      counts.failed++;
      failures.push(`  ${result.id.slice(0, 8)}  ${error.excType}: ${error.excMessage}`);
    }
    draw();
  }),
);
if (interactive) process.stdout.write("\n");

const seconds = (Date.now() - started) / 1000;
console.log(`
Summary: ${total} tasks in ${seconds.toFixed(1)} s
  succeeded: ${counts.succeeded} (${retried} of them after retries)
  failed:    ${counts.failed}
${failures.join("\n")}`);

await client.close();
const code = await worker.stop();
console.log(`Worker stopped (exit code ${code}).`);
process.exitCode = counts.succeeded + counts.failed === total && code === 0 ? 0 : 1;
if (withDashboard) console.log("The dashboard keeps the run's history until you press Ctrl-C.");
