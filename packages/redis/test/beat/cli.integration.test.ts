// `celery-ts beat list|add|remove|pause|resume` change the schedule kept in the store, and
// `celery-ts worker --beat` runs a beat beside its worker; a RabbitMQ broker takes a store by URL.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { testServers, waitUntil, withCompileCache } from "@celery-ts/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BeatProcess } from "./beat-process.ts";

// Each step starts a node process: on a loaded machine, several seconds each. With Node's compile
// cache (inherited by every child) each start takes a third of the CPU.
vi.setConfig({ testTimeout: 300_000 });
Object.assign(process.env, withCompileCache(process.env));

const CLI = fileURLToPath(import.meta.resolve("@celery-ts/worker/cli"));
const TASKS = join(import.meta.dirname, "../../../worker/test/fixtures/cli-tasks.ts");
const AMQP_URL = testServers().amqpUrl;

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe("celery-ts beat (CLI)", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });
  const tempDir = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), "celery-ts-beat-cli-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  };

  it("adds, lists, pauses, resumes and removes entries in the store", async () => {
    const url = `sqlite:///${join(await tempDir(), "beat.db")}`;
    const base = ["beat", "--broker", url];
    const added = await cli([
      ...base,
      "add",
      "--name",
      "nightly",
      "--task",
      "reports.nightly",
      "--crontab",
      "30 2 * * *",
      "--timezone",
      "Europe/Berlin",
      "--kwargs",
      '{"full": true}',
      "--queue",
      "reports",
      "--expires",
      "3600",
    ]);
    expect(added).toMatchObject({ code: 0, stdout: "added nightly\n" });
    expect(
      (await cli([...base, "add", "--entry", '{"name": "often", "task": "t.often", "every": 30}']))
        .code,
    ).toBe(0);
    const listed = JSON.parse((await cli([...base, "list", "--json"])).stdout) as {
      name: string;
      entry: unknown;
      paused: boolean;
    }[];
    expect(listed).toMatchObject([
      {
        name: "nightly",
        paused: false,
        entry: {
          task: "reports.nightly",
          crontab: "30 2 * * *",
          timezone: "Europe/Berlin",
          kwargs: { full: true },
          options: { queue: "reports", expires: 3600 },
        },
      },
      { name: "often", paused: false, entry: { every: 30 } },
    ]);
    expect(await cli([...base, "pause", "nightly"])).toMatchObject({
      code: 0,
      stdout: "paused nightly\n",
    });
    expect((await cli([...base, "list"])).stdout).toMatch(
      /^nightly\treports.nightly\tcrontab 30 2 \* \* \*\tstore\tpaused/m,
    );
    expect(await cli([...base, "resume", "nightly"])).toMatchObject({ code: 0 });
    expect((await cli([...base, "list"])).stdout).toMatch(/^nightly\t.*\tactive/m);
    expect(await cli([...base, "remove", "often"])).toMatchObject({
      code: 0,
      stdout: "removed often\n",
    });
    // Three refusals that change nothing: side by side, so a loaded machine starts them at once.
    const [missing, bad, pauseUnknown] = await Promise.all([
      cli([...base, "remove", "often"]),
      cli([...base, "add", "--name", "x", "--task", "t", "--crontab", "61 * * * *"]),
      cli([...base, "pause", "nope"]),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no entry named "often" was added at run time/);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toMatch(/beat entry "x": crontab minute "61": 61 is out of range/);
    expect(pauseUnknown.stderr).toMatch(/no beat entry named "nope"/);
  });

  it("refuses a RabbitMQ broker without a store, naming --store", async () => {
    const result = await cli(["beat", "--broker", AMQP_URL, "list"]);
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(/no coordination store for amqp:\/\/.*--store redis:\/\//);
  });

  it("worker --beat sends its schedule's ticks and runs them", async () => {
    const dir = await tempDir();
    const url = `sqlite:///${join(dir, "beat.db")}`;
    const schedule = join(dir, "schedule.json");
    // Celery's beat_schedule shape: entries by name.
    await writeFile(schedule, JSON.stringify({ who: { task: "cli.who_am_i", every: 0.5 } }));
    const worker = new BeatProcess([
      "worker",
      "--app",
      TASKS,
      "--broker",
      url,
      "--backend",
      url,
      "-p",
      "1",
      "--beat",
      "--schedule",
      schedule,
    ]);
    cleanups.push(() => worker.stop());
    // Bounded, returning as soon as they ran: a node process starting a worker and a beat takes
    // many seconds on a loaded machine.
    await waitUntil(() => worker.count("beat: sent") >= 2 && worker.count("task succeeded") >= 2, {
      timeoutMs: 90_000,
      what: "two ticks sent and run",
    }).catch((error: Error) => {
      throw new Error(`${error.message}; the worker printed:\n${worker.text}`);
    });
    // A warm shutdown exits 0, however long it takes a loaded machine (the test's timeout bounds
    // it): no SIGKILL after a fixed grace period, which would turn a slow exit into a failure.
    worker.child.kill("SIGTERM");
    expect(await worker.exited, worker.text).toBe(0);
  });
});
