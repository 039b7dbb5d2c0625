// How `celery-ts worker` reads SIGTERM and SIGINT, so that graceful shutdown holds whoever
// delivers the signal: one process, the whole process group (systemd's default, `kill -- -PGID`,
// Ctrl-C), or GNU `timeout` (which signals its child, then the group: the child gets it twice).
import type { Logger } from "@celery-ts/core";

/** The IPC message a supervisor sends its children instead of forwarding a signal. */
export const STOP = "celery-ts:stop";

/**
 * Milliseconds within which a second signal counts as the same delivery (GNU `timeout` signals
 * its child and then the group at once; a process-group signal can reach a process twice): only a
 * later one forces the exit.
 */
export const DUPLICATE_WINDOW_MS = 1_000;

export interface StopSignalOptions {
  logger: Logger;
  /**
   * True in a child of `--processes n`: its signals only ever start the graceful stop, and its
   * supervisor alone decides to kill it (on a second signal to the supervisor). A signal to the
   * process group reaches every child as well as the supervisor; counting both would make each
   * child drop its running task.
   */
  supervised: boolean;
  /** Starts the graceful stop (idempotent). */
  stop(): void;
  /** Exits at once, without waiting for running tasks. */
  exitNow(): void;
  /** @default DUPLICATE_WINDOW_MS */
  duplicateWindowMs?: number;
}

/** Installs the SIGTERM/SIGINT (and, supervised, IPC stop) handlers; returns their removal. */
export function handleStopSignals(options: StopSignalOptions): () => void {
  const { logger, supervised } = options;
  const count = signalCounter(options.duplicateWindowMs);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    const which = count();
    if (which === "first") {
      stopping = true;
      logger.info("shutting down; running tasks may finish", { signal });
      options.stop();
    } else if (supervised) {
      logger.debug("signal ignored: the supervisor decides when to force the exit", { signal });
    } else if (which === "duplicate") {
      logger.debug("duplicate delivery of the stop signal ignored", { signal });
    } else {
      logger.warn("second signal: exiting without waiting for running tasks", { signal });
      options.exitNow();
    }
  };
  const onMessage = (message: unknown): void => {
    if ((message as { type?: unknown } | null)?.type !== STOP) return;
    if (!stopping) onSignal("SIGTERM");
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  if (supervised) process.on("message", onMessage);
  return () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    process.off("message", onMessage);
  };
}

/**
 * For a supervisor: whether a signal is the user's second (force) rather than a duplicate delivery
 * of the first. Call it on each signal; the first returns "first".
 */
export function signalCounter(
  window = DUPLICATE_WINDOW_MS,
): (now?: number) => "first" | "duplicate" | "second" {
  let firstAt: number | undefined;
  return (now = Date.now()) => {
    if (firstAt === undefined) {
      firstAt = now;
      return "first";
    }
    return now - firstAt < window ? "duplicate" : "second";
  };
}
