// `pnpm start`: the whole app on one machine. Starts a celery-ts worker process and the web
// server, and stops both on Ctrl-C (SIGINT) or SIGTERM.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createClient } from "@celery-ts/client";
import { buildApp } from "./app.ts";
import { loadConfig } from "./config.ts";
import { startWorkerProcess } from "@celery-ts/worker";

// Relative paths and sqlite:/// URLs are relative to the example's directory.
process.chdir(join(import.meta.dirname, ".."));
const config = loadConfig();
const log = (line: string): void => console.log(`${new Date().toISOString()} ${line}`);
mkdirSync(config.dataDir, { recursive: true });
mkdirSync(config.reportsDir, { recursive: true });

const worker = startWorkerProcess({
  app: join(import.meta.dirname, "tasks.ts"),
  broker: config.broker,
  backend: config.backend,
  processes: config.workerProcesses,
  // Summing a month keeps the CPU busy: a few tasks per process at most.
  concurrency: config.workerConcurrency,
  // The worker writes the reports where the web server reads them.
  env: { REPORTS_DIR: resolve(config.reportsDir) },
});
log(
  `worker: pid ${worker.pid}, ${config.workerProcesses} process(es) x ${config.workerConcurrency} task(s), ` +
    `broker ${config.broker}, result backend ${config.backend}`,
);

const client = createClient({ broker: config.broker, backend: config.backend });
await client.connect(); // a bad URL shows now, not on the first request
const app = await buildApp({
  client,
  reportsDir: config.reportsDir,
  pollIntervalMs: config.pollIntervalMs,
  // The page's polls (GET /status/...) are left out: one every few seconds drowns the rest.
  onResponse: ({ method, url, statusCode, ms }) => {
    if (!url.startsWith("/status/"))
      log(`web: ${method} ${url} -> ${statusCode} in ${ms.toFixed(1)} ms`);
  },
});
const address = await app.listen({ host: "127.0.0.1", port: config.port });
log(`web: listening on ${address}/ (Ctrl-C stops the web server and the worker)`);

let stopping = false;
const shutdown = async (why: string, code: number): Promise<void> => {
  if (stopping) return;
  stopping = true;
  log(`${why}: stopping the web server, then the worker (running reports get 30 s to finish)`);
  await app.close();
  await client.close();
  const workerCode = await worker.stop();
  log(`worker: stopped (exit code ${workerCode})`);
  log("stopped");
  process.exitCode = code || (workerCode === 0 ? 0 : 1);
};

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) {
      log(`${signal} again: exiting now`);
      process.exit(1);
    }
    void shutdown(signal, 0);
  });
}
void worker.exited.then((code) => {
  if (!stopping) {
    log(`worker: exited on its own (exit code ${code}); see its log above`);
    void shutdown("worker gone", 1);
  }
});
