// `celery-ts dashboard --broker URL --backend URL`, as a user starts it: the worker's command loads
// this package, serves the page on the address it prints, and stops cleanly on Ctrl-C.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { testServers } from "@celery-ts/testing";
import { expect, it, vi } from "vitest";

const REDIS = testServers().redisUrl;
const CLI = join(import.meta.dirname, "../../worker/src/cli.ts");

it("serves the dashboard from celery-ts dashboard, until Ctrl-C", async () => {
  const queue = `dash-cli-${process.pid}`;
  const args = ["dashboard", "--broker", REDIS, "--backend", REDIS, "--port", "0", "-Q", queue];
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: join(import.meta.dirname, ".."),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  try {
    const url = await vi.waitFor(
      () => {
        const printed = /celery-ts dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(output);
        if (!printed) throw new Error(`no URL printed yet: ${output}`);
        return printed[1]!;
      },
      { timeout: 30_000, interval: 100 },
    );
    expect(await (await fetch(url)).text()).toContain("<title>celery-ts dashboard</title>");
    const overview = (await (await fetch(`${url}api/overview`)).json()) as {
      queues: { name: string }[];
    };
    expect(overview.queues.map((q) => q.name)).toContain(queue);
    child.kill("SIGINT");
    expect(await exited).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}, 60_000);
