/** WAL checkpoints of a database file, run on a thread of their own. */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/**
 * The thread's code: its own connection to the file, one PASSIVE checkpoint per "checkpoint"
 * message (answered "done"), and the connection closed on "close" (answered "closed"). It never
 * creates the file: a checkpoint asked for as the database was released, and run once its files
 * were deleted, fails rather than leave an empty database behind. A checkpoint that finds the
 * file busy or locked is left to the next one; any other error is sent back (`{ error }`), and the
 * main thread then checkpoints on its own. Plain CommonJS source, so that it runs as it is from
 * the TypeScript sources and from the bundle alike.
 */
const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
let db;
parentPort.on("message", (message) => {
  if (message === "close") {
    try {
      if (db && db.open) db.close();
    } finally {
      parentPort.postMessage("closed");
      parentPort.close();
    }
    return;
  }
  try {
    db ??= new Database(workerData.path, { timeout: 0, fileMustExist: true });
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch (error) {
    const code = String((error && error.code) || "");
    if (!code.startsWith("SQLITE_BUSY") && !code.startsWith("SQLITE_LOCKED")) {
      parentPort.postMessage({ error: String((error && error.message) || error) });
      return;
    }
    // Another connection is checkpointing, or the file is busy: a later checkpoint copies it.
  }
  parentPort.postMessage("done");
});
`;

/**
 * Told once, when checkpoints leave the thread: `cause` says why. The shared connection has no
 * logger of its own (its users' loggers differ), so by default this is a process warning.
 */
export type CheckpointerFailure = (message: string, cause: string) => void;

const PROCESS_WARNING_CODE = "CELERY_TS_SQLITE_CHECKPOINT_THREAD";

function warnProcess(message: string, cause: string): void {
  process.emitWarning(`${message}: ${cause}`, { code: PROCESS_WARNING_CODE });
}

const isError = (message: unknown): message is { error: string } =>
  typeof message === "object" && message !== null && "error" in message;

export interface Checkpointer {
  /** Starts a checkpoint, unless one is under way. */
  run(): void;
  /**
   * Asks the thread to close its connection, after the checkpoint under way if any; once it has
   * (it answers "closed"), the thread is terminated. Both happen after this returns: nothing
   * waits for them, and a failure then is not reported. Idempotent.
   */
  close(): void;
}

/** The thread, with a small heap (it only runs the checkpoints), not keeping the process alive. */
function spawn(path: string): Worker {
  const driver = createRequire(import.meta.url).resolve("better-sqlite3");
  const worker = new Worker(SOURCE, {
    eval: true,
    workerData: { path, driver },
    resourceLimits: {
      maxYoungGenerationSizeMb: 1,
      maxOldGenerationSizeMb: 16,
      codeRangeSizeMb: 2,
      stackSizeMb: 1,
    },
  });
  worker.unref();
  return worker;
}

/**
 * A checkpoint copies the WAL's pages into the database and syncs both files: two fsyncs, a few
 * milliseconds on a typical disk. Run on the event loop, they stalled every send, claim and
 * result behind them (in a round trip, each process's hundredth commit); on a thread of its own
 * the event loop goes on, and so do the other connections' writes (PASSIVE waits for no one).
 * The thread starts on the first checkpoint, and does not keep the process alive; it costs about
 * 12 MB of memory (a small heap: it only runs the checkpoints). Should it fail to start or run
 * out of memory, fail to checkpoint (other than on a busy file), or end, `fallback` (a checkpoint
 * on the event loop, on a later turn than the commit that asked for it) runs from then on, and
 * `report` is told once.
 */
export function createCheckpointer(
  path: string,
  fallback: () => void,
  report: CheckpointerFailure = warnProcess,
): Checkpointer {
  let worker: Worker | undefined;
  let failed = false;
  let running = false;
  let closed = false;
  const fail = (cause: unknown): void => {
    if (failed) return;
    failed = true;
    worker = undefined;
    if (closed) return;
    report(
      `celery-ts sqlite: the WAL checkpoint thread of ${path} failed; checkpoints now run on the event loop`,
      cause instanceof Error ? cause.message : String(cause),
    );
  };
  // The event loop's checkpoint, on a later turn: not inside the commit that asked for it.
  const runHere = (): void => {
    running = true;
    setImmediate(() => {
      running = false;
      if (!closed) fallback();
    });
  };
  // The thread failed or ended: checkpoints move here, the one it was asked for first.
  const abandon = (cause: unknown): void => {
    if (failed) return;
    const pending = running;
    fail(cause);
    running = false;
    if (pending) runHere();
  };
  const start = (): Worker => {
    const started = spawn(path);
    started.on("message", (message: unknown) => {
      if (message === "done") running = false;
      else if (message === "closed") void started.terminate().catch(() => {});
      else if (isError(message)) {
        abandon(message.error);
        started.postMessage("close");
      }
    });
    started.on("error", abandon);
    // Ending without an error (or after one): no checkpoint would run again otherwise.
    started.on("exit", (code) => {
      if (closed) running = false;
      else abandon(`the thread ended (exit code ${code})`);
    });
    return started;
  };
  return {
    run() {
      if (closed || running) return;
      if (failed) return runHere();
      try {
        worker ??= start();
      } catch (error) {
        fail(error);
        return runHere();
      }
      running = true;
      worker.postMessage("checkpoint");
    },
    close() {
      if (closed) return;
      closed = true;
      worker?.postMessage("close");
      worker = undefined;
    },
  };
}
