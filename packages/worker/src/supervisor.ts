import { fork, type ChildProcess } from "node:child_process";
import type { Logger } from "@celery-ts/core";

export interface SupervisorOptions {
  /** How many worker processes. */
  processes: number;
  /** The script each child runs, and its arguments. */
  script: string;
  args: string[];
  logger: Logger;
}

/** A child that dies sooner than this after starting counts as crash-looping. */
const HEALTHY_AFTER_MS = 5_000;
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * Runs worker processes like Celery's prefork pool: starts them, restarts one that dies (with
 * backoff when it keeps dying), and on SIGTERM/SIGINT asks each to stop gracefully and waits.
 * A second signal kills them at once. Resolves with the exit code for the supervisor.
 */
export function superviseWorkers(options: SupervisorOptions): Promise<number> {
  const { logger: log } = options;
  const children = new Set<ChildProcess>();
  let stopping = false;

  return new Promise((resolveExit) => {
    const start = (slot: number, failures: number): void => {
      const startedAt = Date.now();
      const child = fork(options.script, options.args, { stdio: "inherit" });
      children.add(child);
      log.info("worker process started", { slot, pid: child.pid });
      child.on("exit", (code, signal) => {
        children.delete(child);
        if (stopping) {
          if (children.size === 0) resolveExit(0);
          return;
        }
        const quick = Date.now() - startedAt < HEALTHY_AFTER_MS;
        const nextFailures = quick ? failures + 1 : 0;
        const delay = Math.min(MAX_RESTART_DELAY_MS, quick ? 250 * 2 ** failures : 0);
        log.error("worker process died; restarting it", {
          slot,
          pid: child.pid,
          code,
          signal,
          inMs: delay,
        });
        setTimeout(() => {
          if (!stopping) start(slot, nextFailures);
        }, delay);
      });
    };

    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn("second signal: killing worker processes now", { signal });
        children.forEach((child) => child.kill("SIGKILL"));
        resolveExit(1);
        return;
      }
      stopping = true;
      log.info("stopping worker processes; running tasks may finish", { signal });
      if (children.size === 0) resolveExit(0);
      children.forEach((child) => child.kill("SIGTERM"));
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);

    for (let slot = 0; slot < options.processes; slot++) start(slot, 0);
  });
}
