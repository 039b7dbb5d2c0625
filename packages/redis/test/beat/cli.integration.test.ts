// `celery-ts beat list|add|remove|pause|resume` change the schedule kept in the store, and
// `celery-ts worker --beat` runs a beat beside its worker; a RabbitMQ broker takes a store by URL.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { testServers } from "@celery-ts/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BeatProcess, waitFor } from "./beat-process.ts";

// Each step starts a node process: on a loaded machine, several seconds each.
vi.setConfig({ testTimeout: 180_000 });

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
    const missing = await cli([...base, "remove", "often"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no entry named "often" was added at run time/);
    const bad = await cli([
      ...base,
      "add",
      "--name",
      "x",
      "--task",
      "t",
      "--crontab",
      "61 * * * *",
    ]);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toMatch(/beat entry "x": crontab minute "61": 61 is out of range/);
    const pauseUnknown = await cli([...base, "pause", "nope"]);
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
    await waitFor(
      () => worker.count("beat: sent") >= 2 && worker.count("task succeeded") >= 2,
      30_000,
      `two ticks run:\n${worker.text}`,
    );
    await worker.stop();
    expect(await worker.exited).toBe(0);
  });
});
