import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { APP_DIR, PYTHON, environment, type PythonCeleryConfig } from "./python-celery.ts";

/** What python/canvas_client.py prints: the canvas's result id and value, or the error raised. */
export interface PythonCanvasOutcome {
  id: string;
  result?: unknown;
  status?: string;
  exc_type?: string;
  exc_message?: string;
  /** The ids of the result's parents, nearest first (with `parents: true`). */
  parents?: string[];
  /** For `restore`: the restored group's member ids. */
  ids?: string[];
}

export interface PythonCanvasCommand {
  /**
   * A Python expression building the canvas with Celery's `chain`, `group`, `chord`, `chunks`,
   * `signature` and the helpers `py(name, *args)` / `ts(name, *args)` (signatures of
   * `canvas.py_<name>` / `canvas.ts_<name>` routed to `pyQueue` / `tsQueue`) and `py_i` / `ts_i`
   * (immutable ones).
   */
  expr?: string;
  /** Python statements instead of `expr`, with the same names plus `app`; they set `result`. */
  script?: string;
  pyQueue?: string;
  tsQueue?: string;
  /** Seconds the Python client waits for the result. @default 30 */
  timeout?: number;
  /** Also report the ids of the result's parents. */
  parents?: boolean;
  /** Options for `apply_async()`, e.g. `{ queue }` (chunks route only by these). */
  apply_options?: Record<string, unknown>;
  /** Save the (group) result before waiting. */
  save?: boolean;
  /** Restore this saved group instead, and wait for its results. */
  restore?: string;
}

/** Builds a canvas with the real Python Celery client, applies it and waits for its result. */
export async function runPythonCanvas(
  config: PythonCeleryConfig,
  command: PythonCanvasCommand,
): Promise<PythonCanvasOutcome> {
  const { pyQueue, tsQueue, ...rest } = command;
  const { stdout } = await promisify(execFile)(
    PYTHON,
    [
      join(APP_DIR, "canvas_client.py"),
      JSON.stringify({ ...rest, py_queue: pyQueue, ts_queue: tsQueue }),
    ],
    { env: environment(config), timeout: 90_000 },
  );
  return JSON.parse(stdout.trim().split("\n").pop()!) as PythonCanvasOutcome;
}
