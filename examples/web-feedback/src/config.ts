// Settings from environment variables, with defaults that run on one machine with nothing to
// install. main.ts reads them once and hands each piece what it needs.
import { join } from "node:path";

export interface Config {
  /** The web server's port on 127.0.0.1 (0: any free port). */
  port: number;
  /** The local mail server's port on 127.0.0.1 (0: any free port). */
  smtpPort: number;
  /** How many deliveries the local mail server refuses (451) before it accepts mail. */
  smtpRefuseFirst: number;
  /** Where the feedback, the SQLite database and the received mail are kept. */
  dataDir: string;
  broker: string;
  backend: string;
  /** Who gets the notice of each new feedback. */
  supportAddress: string;
  /** The From of every email. */
  mailFrom: string;
  /** `celery-ts worker --processes`. */
  workerProcesses: number;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
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
  const sqliteUrl = `sqlite:///${join(dataDir, "web-feedback.db")}`;
  const broker = env.CELERY_BROKER_URL || sqliteUrl;
  return {
    port: integer(env, "PORT", 3000, 65535),
    smtpPort: integer(env, "SMTP_PORT", 2525, 65535),
    smtpRefuseFirst: integer(env, "SMTP_REFUSE_FIRST", 2, 1_000_000),
    dataDir,
    broker,
    backend: env.CELERY_RESULT_BACKEND || defaultBackend(broker, sqliteUrl),
    supportAddress: env.SUPPORT_ADDRESS || "support@example.com",
    mailFrom: env.MAIL_FROM || "Example Feedback <feedback@example.com>",
    workerProcesses: integer(env, "WORKER_PROCESSES", 1, 64) || 1,
  };
}
