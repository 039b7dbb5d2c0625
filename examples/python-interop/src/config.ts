// Settings from environment variables, with the names Python Celery uses for the broker and the
// result backend, so that both sides of the example read the same two variables.

export interface Config {
  /** The web server's port on 127.0.0.1 (0: any free port). */
  port: number;
  broker: string;
  backend: string;
  /** `celery-ts worker --processes`. */
  workerProcesses: number;
}

/** The default broker and result backend, on both sides: the local Redis, database 0. */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0";

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const text = env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new Error(`${name} must be a whole number from 0 to ${max}, not "${text}"`);
  }
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const broker = env.CELERY_BROKER_URL || DEFAULT_REDIS_URL;
  return {
    port: integer(env, "PORT", 3000, 65535),
    broker,
    // As in python/tasks.py: results go to the broker's Redis unless told otherwise.
    backend: env.CELERY_RESULT_BACKEND || broker,
    workerProcesses: integer(env, "WORKER_PROCESSES", 1, 64) || 1,
  };
}
