import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { decodeJson, encodeJson } from "@celery-ts/core";
import { PYTHON } from "@celery-ts/testing";

const PROBE = join(import.meta.dirname, "kombu_probe.py");

/**
 * Runs one kombu_probe.py command (kombu and py-amqp, as Debian's Celery 5.2 has them). Integers
 * beyond 2^53 go both ways exactly (bigints), as Python's json reads and writes them.
 */
export async function kombu<T = unknown>(command: Record<string, unknown>): Promise<T> {
  const { stdout } = await promisify(execFile)(PYTHON, [PROBE, encodeJson(command)], {
    timeout: 30_000,
  });
  return decodeJson(stdout.trim().split("\n").pop()!) as T;
}
