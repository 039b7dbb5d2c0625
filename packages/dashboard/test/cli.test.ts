// `celery-ts dashboard --broker URL --backend URL`, as a user starts it: the worker's command loads
// this package, serves the page on the address it prints, and stops cleanly on Ctrl-C.
import { join } from "node:path";
import { spawnCollecting, testServers } from "@celery-ts/testing";
import { expect, it } from "vitest";

const REDIS = testServers().redisUrl;
const CLI = join(import.meta.dirname, "../../worker/src/cli.ts");

it("serves the dashboard from celery-ts dashboard, until Ctrl-C", async () => {
  const queue = `dash-cli-${process.pid}`;
  const args = ["dashboard", "--broker", REDIS, "--backend", REDIS, "--port", "0", "-Q", queue];
  const child = spawnCollecting(process.execPath, [CLI, ...args], {
    cwd: join(import.meta.dirname, ".."),
  });
  try {
    const [, url] = await child.waitForOutput(
      /celery-ts dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/,
      30_000,
    );
    expect(await (await fetch(url!)).text()).toContain("<title>celery-ts dashboard</title>");
    const overview = (await (await fetch(`${url}api/overview`)).json()) as {
      queues: { name: string }[];
    };
    expect(overview.queues.map((q) => q.name)).toContain(queue);
    expect(await child.stop("SIGINT", 30_000)).toMatchObject({ code: 0, signal: null });
  } finally {
    await child.stop("SIGKILL");
  }
}, 60_000);
