import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { PYTHON } from "@celery-ts/testing";

const PROBE = join(import.meta.dirname, "kombu_probe.py");

/** Runs one kombu_probe.py command (kombu and py-amqp, as Debian's Celery 5.2 has them). */
export async function kombu<T = unknown>(command: Record<string, unknown>): Promise<T> {
  const { stdout } = await promisify(execFile)(PYTHON, [PROBE, JSON.stringify(command)], {
    timeout: 30_000,
  });
  return JSON.parse(stdout.trim().split("\n").pop()!) as T;
}
