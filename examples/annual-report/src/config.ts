// Settings from environment variables, with defaults that run on one machine with nothing to
// install. main.ts reads them once and hands each piece what it needs.
import { join } from "node:path";

export interface Config {
  /** The web server's port on 127.0.0.1 (0: any free port). */
  port: number;
  /** Where the SQLite database and the reports are kept. */
  dataDir: string;
  reportsDir: string;
  broker: string;
  backend: string;
  /** How often the page asks for the task's state. */
  pollIntervalMs: number;
  /** `celery-ts worker --processes` and `--concurrency`. */
  workerProcesses: number;
  workerConcurrency: number;
}

export function integer(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  max: number,
): number {
  const text = env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new Error(`${name} must be a whole number from 0 to ${max}, not "${text}"`);
  }
  return value;
}

/**
 * The result backend to use with a broker URL when CELERY_RESULT_BACKEND is not set: the same URL
 * for SQLite and Redis (both are a broker and a result backend), and the SQLite file otherwise
 * (RabbitMQ is a broker only). So switching the broker is a one-URL change.
 */
export function defaultBackend(broker: string, sqliteUrl: string): string {
  return /^(sqlite|rediss?):\/\//i.test(broker) ? broker : sqliteUrl;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = env.DATA_DIR || ".data";
  // sqlite:/// + a relative path is relative to the working directory; + an absolute path
  // ("/tmp/x") makes the four-slash absolute form.
  const sqliteUrl = `sqlite:///${join(dataDir, "annual-report.db")}`;
  const broker = env.CELERY_BROKER_URL || sqliteUrl;
  return {
    port: integer(env, "PORT", 3001, 65535),
    dataDir,
    reportsDir: env.REPORTS_DIR || join(dataDir, "reports"),
    broker,
    backend: env.CELERY_RESULT_BACKEND || defaultBackend(broker, sqliteUrl),
    pollIntervalMs: integer(env, "POLL_INTERVAL_MS", 2000, 600_000) || 2000,
    workerProcesses: integer(env, "WORKER_PROCESSES", 2, 64) || 1,
    workerConcurrency: integer(env, "WORKER_CONCURRENCY", 1, 1000) || 1,
  };
}
