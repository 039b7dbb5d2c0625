import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@celery-ts/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { whoAmI } from "./fixtures/cli-tasks.ts";
import { CliProcess, TASKS } from "./cli-process.ts";

/** What a new user meets first: the version, Celery's log level names, app modules that fail. */
describe("celery-ts CLI front door", { timeout: 60_000 }, () => {
  let dir: string;
  let url: string;
  const processes: CliProcess[] = [];
  const cli = (args: string[]): CliProcess => {
    const process = new CliProcess(args);
    processes.push(process);
    return process;
  };
  const worker = (app: string, args: string[] = []): CliProcess =>
    cli(["worker", "--app", app, "--broker", url, "--processes", "1", ...args]);
  const write = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "celery-ts-front-door-"));
    url = `sqlite:///${join(dir, "queue.db")}`;
  });
  afterEach(async () => {
    await Promise.all(processes.splice(0).map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints its version with --version", async () => {
    const { version } = JSON.parse(
      readFileSync(join(import.meta.dirname, "../package.json"), "utf8"),
    ) as { version: string };
    const process = cli(["--version"]);
    expect(await process.exited).toBe(0);
    expect(process.stdout).toContain(`celery-ts ${version}`);
  });

  it("takes log levels in any case, as Celery users type them", async () => {
    const debug = worker(TASKS, ["--log-level", "DEBUG", "--log-format", "json"]);
    expect(await debug.waitForLog("app module loaded")).toMatchObject({ level: "debug" });
    await debug.waitForLog("worker ready");
    await debug.stop();
    const warning = worker(TASKS, ["-l", "Warning", "--log-format", "json", "--backend", url]);
    const wrong = worker(TASKS, ["--log-level", "loud"]);
    expect(await wrong.exited).toBe(1);
    expect(wrong.stderr).toMatch(
      /--log-level is debug, info, warning or error \(any case\), not "loud"/,
    );
    // At warning level the worker logs no "worker ready": a task it ran says it is up (and its
    // signal handlers are in place, so the stop below is a graceful one).
    const client = createClient({ broker: url, backend: url });
    try {
      const pid = await (await client.task(whoAmI).delay()).get({ timeout: 30 });
      expect(pid).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
    expect(await warning.stop()).toBe(0);
    expect(warning.lines.filter((line) => line.level === "info")).toEqual([]);
  });

  it("shows the file, line and source of a syntax error in the app module", async () => {
    write("package.json", JSON.stringify({ type: "module" }));
    const app = write("tasks.ts", "export const x = 1;\nconst broken = ;\n");
    const process = worker(app);
    expect(await process.exited).toBe(78);
    expect(process.stderr).toContain(`${app}:2`);
    expect(process.stderr).toContain("const broken = ;");
    expect(process.stderr).toMatch(/Expression expected/);
  });

  it("shows the stack of an app module that throws while it is imported", async () => {
    write("package.json", JSON.stringify({ type: "module" }));
    write(
      "config.ts",
      'export function load(): never {\n  throw new Error("DATABASE_URL is not set");\n}\n',
    );
    const app = write("tasks.ts", 'import { load } from "./config.ts";\nload();\n');
    const process = worker(app);
    expect(await process.exited).toBe(78);
    expect(process.stderr).toMatch(/Error: DATABASE_URL is not set\n\s+at load \(.*config\.ts:2:/);
    expect(process.stderr).toMatch(/tasks\.ts:2:/);
  });

  it("says what to change when npm init's CommonJS package loads an ES module tasks.ts", async () => {
    const manifest = write("package.json", JSON.stringify({ name: "app", type: "commonjs" }));
    const app = write(
      "tasks.ts",
      'import { defineTask } from "@celery-ts/core";\nexport const t = defineTask("t", () => 1);\n',
    );
    const process = worker(app);
    expect(await process.exited).toBe(78);
    expect(process.stderr).toContain(`Set "type": "module" in ${manifest}, or name the module`);
    expect(process.stderr).toContain(join(dir, "tasks.mts"));
  });
});
