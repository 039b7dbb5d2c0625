// The TypeScript side's tasks: the celery-ts worker that `pnpm start` runs imports this module
// (`celery-ts worker --app src/tasks.ts`), and python/send_to_typescript.py calls them by name.
import { defineTask } from "@celery-ts/core";

export interface Summary {
  count: number;
  total: number;
  mean: number;
  min: number;
  max: number;
}

/**
 * An error named like Python's built-in ValueError: celery-ts stores it with module "builtins", so
 * a Python caller's `.get()` raises Python's own ValueError. (TypeError and RangeError are
 * JavaScript's; TypeError is Python's too, RangeError is not.)
 */
export class ValueError extends Error {
  override name = "ValueError";
}

const round = (value: number, digits: number): number => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

/** What Python sees as `type(x).__name__`, for error messages a Python caller reads. */
const pythonTypeName = (value: unknown): string => {
  if (value === null) return "None";
  if (Array.isArray(value)) return "list";
  if (typeof value === "string") return "str";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "object") return "dict";
  return typeof value;
};

/**
 * Summarizes a list of numbers. From Python:
 * `app.send_task("reports.summarize", args=[[3, 1, 4]], kwargs={"precision": 1})`.
 *
 * `params` names the parameters, so positional and keyword arguments bind as in Python
 * (`summarize(numbers, precision=2)`); a call that does not fit fails with Python's TypeError.
 * Values from Python are untyped, so the task checks them: a list that is not all numbers throws a
 * TypeError, which a Python caller catches with `except TypeError`.
 */
export const summarize = defineTask(
  "reports.summarize",
  (numbers: number[], precision: number = 2): Summary => {
    if (!Array.isArray(numbers)) {
      throw new TypeError(
        `reports.summarize takes a list of numbers, not a ${pythonTypeName(numbers)}`,
      );
    }
    const bad = numbers.findIndex((n) => typeof n !== "number" || !Number.isFinite(n));
    if (bad !== -1) {
      throw new TypeError(
        `reports.summarize takes a list of numbers; item ${bad} is a ${pythonTypeName(numbers[bad])} (${JSON.stringify(numbers[bad])})`,
      );
    }
    if (numbers.length === 0) throw new ValueError("reports.summarize needs at least one number");
    if (typeof precision !== "number" || !Number.isInteger(precision)) {
      throw new TypeError(`precision must be a whole number, not ${JSON.stringify(precision)}`);
    }
    if (precision < 0 || precision > 10) {
      throw new ValueError(`precision must be from 0 to 10, not ${precision}`);
    }
    const total = numbers.reduce((sum, n) => sum + n, 0);
    return {
      count: numbers.length,
      total: round(total, precision),
      mean: round(total / numbers.length, precision),
      min: numbers.reduce((a, b) => Math.min(a, b)),
      max: numbers.reduce((a, b) => Math.max(a, b)),
    };
  },
  { params: ["numbers", "precision?"] },
);
