import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "./support/private-redis.ts";

const CLI = join(import.meta.dirname, "../../worker/src/cli.ts");

/** Runs `celery-ts ...` from this package (where @celery-ts/redis resolves, as in an app). */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: join(import.meta.dirname, ".."), timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The JSON log lines of a command's stderr. */
const logLines = (stderr: string): Record<string, unknown>[] =>
  stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

// `celery-ts beat list|add|remove|pause|resume` and `celery-ts events` give the store or broker
// they open the command's logger (`-l/--log-level`, `--log-format`, on stderr), as the other
// one-shot commands do: here a Redis nobody listens on, whose failed connection attempts the
// driver logs at debug level.
describe("celery-ts beat and events: the driver's log lines reach the command's log", () => {
  it("beat list: the store's connection attempts as JSON debug lines, then a clear error", async () => {
    const store = `redis://127.0.0.1:${await freePort()}/0`;
    const { code, stdout, stderr } = await cli([
      "beat",
      "list",
      "--store",
      store,
      "-l",
      "DEBUG",
      "--log-format",
      "json",
    ]);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(logLines(stderr)).toContainEqual(
      expect.objectContaining({
        level: "debug",
        msg: expect.stringMatching(/^redis: store connection to .* failed$/),
      }),
    );
    expect(stderr).toMatch(/was not reachable within .*; is the server running and the URL right/);
  }, 60_000);

  it("beat pause at the default level (warning): no debug line, only the error", async () => {
    const store = `redis://127.0.0.1:${await freePort()}/0`;
    const { code, stderr } = await cli(["beat", "pause", "x", "--store", store]);
    expect(code).toBe(1);
    expect(stderr).not.toContain("connection to");
    expect(stderr).toMatch(/was not reachable within/);
  }, 60_000);

  it("events: the broker's connection error as a JSON debug line", async () => {
    const broker = `redis://127.0.0.1:${await freePort()}/0`;
    const { code, stderr } = await cli([
      "events",
      "--dump",
      "--for",
      "2",
      "--broker",
      broker,
      "--log-level",
      "debug",
      "--log-format",
      "json",
    ]);
    expect(code).toBe(1);
    expect(logLines(stderr)).toContainEqual(
      expect.objectContaining({ level: "debug", msg: "redis: broadcast connection error" }),
    );
  }, 60_000);

  it("refuses an unknown level, the same way for both", async () => {
    for (const args of [
      ["beat", "list", "-l", "verbose"],
      ["events", "-l", "verbose"],
    ]) {
      const { code, stderr } = await cli(args);
      expect(code).toBe(1);
      expect(stderr).toContain(
        '--log-level is debug, info, warning or error (any case), not "verbose"',
      );
    }
  }, 60_000);
});
