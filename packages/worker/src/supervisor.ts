import { fork, type ChildProcess } from "node:child_process";
import type { Logger } from "@celery-ts/core";
import { signalCounter, STOP } from "./internal/stop-signals.ts";

export interface SupervisorOptions {
  /** How many worker processes. */
  processes: number;
  /** The script each child runs, and its arguments. */
  script: string;
  args: string[];
  logger: Logger;
}

/** The message a child sends its supervisor when it retires (max tasks or memory per child). */
export const RETIRING = "celery-ts:retiring";

/** For a supervised child: a message to the supervisor (nothing when unsupervised). */
export function tellSupervisor(message: { type: typeof RETIRING } & Record<string, unknown>): void {
  process.send?.(message);
}

/** A child that dies sooner than this after starting counts as crash-looping. */
const HEALTHY_AFTER_MS = 5_000;
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * Runs worker processes like Celery's prefork pool: starts them, restarts one that dies (with
 * backoff when it keeps dying), and on SIGTERM/SIGINT asks each (over IPC) to stop gracefully and
 * waits. A second signal, not a duplicate delivery of the first, kills them at once. Resolves with the exit code for the supervisor.
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
      let retiring = false;
      // A retiring child takes no more tasks: its replacement starts now, while it finishes.
      child.on("message", (message: { type?: unknown } | null) => {
        if (message?.type !== RETIRING || retiring || stopping) return;
        retiring = true;
        log.info("worker process retiring; starting its replacement", {
          ...message,
          type: undefined,
          slot,
          pid: child.pid,
        });
        start(slot, 0);
      });
      child.on("exit", (code, signal) => {
        children.delete(child);
        if (stopping) {
          if (children.size === 0) resolveExit(0);
          return;
        }
        if (retiring) {
          // Its replacement runs already: never a second one.
          if (code === 0) log.info("retired worker process exited", { slot, pid: child.pid });
          else log.error("retiring worker process died", { slot, pid: child.pid, code, signal });
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

    const count = signalCounter();
    const onSignal = (signal: NodeJS.Signals): void => {
      const which = count();
      if (which === "duplicate") {
        log.debug("duplicate delivery of the stop signal ignored", { signal });
        return;
      }
      if (which === "second") {
        log.warn("second signal: killing worker processes now", { signal });
        children.forEach((child) => child.kill("SIGKILL"));
        resolveExit(1);
        return;
      }
      stopping = true;
      log.info("stopping worker processes; running tasks may finish", { signal });
      if (children.size === 0) resolveExit(0);
      // Over IPC, not a signal: a child tells a signal of its own (which the process group may
      // have delivered too) from this, and never counts the two as a second signal.
      children.forEach((child) => {
        const byIpc = (): void =>
          void child.send({ type: STOP }, (error) => error && child.kill("SIGTERM"));
        if (child.connected) byIpc();
        else child.kill("SIGTERM");
      });
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);

    for (let slot = 0; slot < options.processes; slot++) start(slot, 0);
  });
}
