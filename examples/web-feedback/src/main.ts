// `pnpm start`: the whole app on one machine. Starts the local mail server, a celery-ts worker
// process and the web server, and stops all three on Ctrl-C (SIGINT) or SIGTERM.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@celery-ts/client";
import { buildApp } from "./app.ts";
import { loadConfig } from "./config.ts";
import { createFeedbackStore } from "./feedback-store.ts";
import { startMailServer } from "./mail-server.ts";
import { startWorkerProcess } from "@celery-ts/worker";

// Relative paths and sqlite:/// URLs are relative to the example's directory.
process.chdir(join(import.meta.dirname, ".."));
const config = loadConfig();
const log = (line: string): void => console.log(`${new Date().toISOString()} ${line}`);
mkdirSync(config.dataDir, { recursive: true });

const mailServer = await startMailServer({
  port: config.smtpPort,
  refuseFirst: config.smtpRefuseFirst,
  mailboxDir: join(config.dataDir, "mailbox"),
  log,
});
log(
  `mail server: smtp://127.0.0.1:${mailServer.port}, saving mail in ${join(config.dataDir, "mailbox")}` +
    (config.smtpRefuseFirst > 0
      ? ` (refusing the first ${config.smtpRefuseFirst} deliveries, to show retries)`
      : ""),
);

const worker = startWorkerProcess({
  app: join(import.meta.dirname, "tasks.ts"),
  broker: config.broker,
  backend: config.backend,
  processes: config.workerProcesses,
  env: {
    SMTP_HOST: mailServer.host,
    SMTP_PORT: String(mailServer.port),
    MAIL_FROM: config.mailFrom,
  },
});
log(`worker: pid ${worker.pid}, broker ${config.broker}, result backend ${config.backend}`);

const client = createClient({ broker: config.broker, backend: config.backend });
await client.connect(); // a bad URL shows now, not on the first request
const app = await buildApp({
  client,
  store: createFeedbackStore(join(config.dataDir, "feedback.jsonl")),
  supportAddress: config.supportAddress,
  onResponse: ({ method, url, statusCode, ms }) =>
    log(`web: ${method} ${url} -> ${statusCode} in ${ms.toFixed(1)} ms`),
});
const address = await app.listen({ host: "127.0.0.1", port: config.port });
log(`web: listening on ${address}/ (Ctrl-C stops the web server, the worker and the mail server)`);

let stopping = false;
const shutdown = async (why: string, code: number): Promise<void> => {
  if (stopping) return;
  stopping = true;
  log(
    `${why}: stopping the web server, then the worker (running tasks finish), then the mail server`,
  );
  await app.close();
  await client.close();
  const workerCode = await worker.stop();
  log(`worker: stopped (exit code ${workerCode})`);
  await mailServer.close();
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
