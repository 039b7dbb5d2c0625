// `pnpm start`: the TypeScript side. Starts the web app (which sends work to the Python worker)
// and a celery-ts worker for src/tasks.ts (which python/send_to_typescript.py sends work to),
// both on the same Redis as the Python side, and stops both on Ctrl-C (SIGINT) or SIGTERM.
import { join } from "node:path";
import { createClient } from "@celery-ts/client";
import { buildApp } from "./app.ts";
import { loadConfig } from "./config.ts";
import { PYTHON_QUEUE } from "./python-tasks.ts";
import { startWorkerProcess } from "@celery-ts/worker";

process.chdir(join(import.meta.dirname, ".."));
const config = loadConfig();
const log = (line: string): void => console.log(`${new Date().toISOString()} ${line}`);

const worker = startWorkerProcess({
  app: join(import.meta.dirname, "tasks.ts"),
  broker: config.broker,
  backend: config.backend,
  processes: config.workerProcesses,
});
log(
  `worker: pid ${worker.pid}, running src/tasks.ts from the "celery" queue; broker ${config.broker}, result backend ${config.backend}`,
);

const client = createClient({ broker: config.broker, backend: config.backend });
await client.connect(); // a bad URL or a Redis that is down shows now, not on the first request
const app = await buildApp({
  client,
  onResponse: ({ method, url, statusCode, ms }) =>
    log(`web: ${method} ${url} -> ${statusCode} in ${ms.toFixed(1)} ms`),
});
const address = await app.listen({ host: "127.0.0.1", port: config.port });
log(
  `web: listening on ${address}/ (sends to the Python worker's "${PYTHON_QUEUE}" queue; Ctrl-C stops the web server and the worker)`,
);

let stopping = false;
const shutdown = async (why: string, code: number): Promise<void> => {
  if (stopping) return;
  stopping = true;
  log(`${why}: stopping the web server, then the worker (running tasks finish)`);
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
