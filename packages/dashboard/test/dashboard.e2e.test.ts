// End to end in the real Chromium: a TypeScript worker and a Python Celery 5.2.6 worker on Redis
// run tasks; the page shows both workers and their tasks, a revoke from the page stops a running
// task, a failed task shows its traceback, and the page fits a phone's width. Dead letters: a task
// the worker rejects is counted on its queue and listed; replayed from the page it runs; purged
// from the page they are gone.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chain, createClient, s } from "@celery-ts/client";
import { resolveTransport, type Transport } from "@celery-ts/core";
import { startPythonWorker, testServers, type PythonWorker } from "@celery-ts/testing";
import { createWorker } from "@celery-ts/worker";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startDashboard, type Dashboard } from "../src/index.ts";
import { shutGates } from "./fixtures/gates.ts";
import * as tasks from "./fixtures/tasks.ts";

// The run's database (CELERY_TS_REDIS_URL). Other test files' workers may show up on the page too:
// the test looks only at the rows of its own workers, queues and tasks.
const REDIS = testServers().redisUrl;
const run = `${process.pid}-${Date.now()}`;
const TS_QUEUE = `dash-ts-${run}`;
const PY_QUEUE = `dash-py-${run}`;
/** A queue no worker consumes: its messages wait, for the page to purge. */
const IDLE_QUEUE = `dash-idle-${run}`;
const OUT = join(import.meta.dirname, "../test-output");

const shot = (name: string): string => {
  mkdirSync(OUT, { recursive: true });
  return join(OUT, `${name}.png`);
};

let browser: Browser;
let python: PythonWorker;
let dashboard: Dashboard;
const worker = createWorker({
  broker: REDIS,
  backend: REDIS,
  tasks: Object.values(tasks),
  queues: [TS_QUEUE],
  hostname: `ts-dash-${run}@test`,
  taskEvents: true,
  concurrency: 4,
});
const client = createClient({ broker: REDIS, backend: REDIS });
/** The broker itself, to check what the page's purges did there. */
let broker: Transport;

beforeAll(async () => {
  broker = await resolveTransport(REDIS);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  dashboard = await startDashboard({
    broker: REDIS,
    backend: REDIS,
    port: 0,
    queues: [TS_QUEUE, PY_QUEUE, IDLE_QUEUE],
    pollInterval: 1,
  });
  await worker.start();
  python = await startPythonWorker({
    brokerUrl: REDIS,
    resultBackend: REDIS,
    queues: [PY_QUEUE],
    events: true,
    concurrency: 2,
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await python?.stop();
  await worker.stop();
  await client.close();
  await broker?.close();
  await dashboard?.close();
}, 60_000);

/** Accepts every confirm() and prompt() the page shows, recording their text. */
function acceptDialogs(page: Page): string[] {
  const seen: string[] = [];
  page.on("dialog", (dialog) => {
    seen.push(dialog.message());
    void dialog.accept(dialog.type() === "prompt" ? dialog.defaultValue() : undefined);
  });
  return seen;
}

it("shows a mixed fleet, revokes from the page, shows a traceback, fits a phone", async () => {
  const sum = await client.sendTask<number>("dash.add", { args: [2, 3], queue: TS_QUEUE });
  const pySum = await client.sendTask<number>("interop.add", { args: [20, 22], queue: PY_QUEUE });
  const boom = await client.sendTask("dash.explode", { args: ["on purpose"], queue: TS_QUEUE });
  const pyBoom = await client.sendTask("interop.fail", {
    args: ["python on purpose"],
    queue: PY_QUEUE,
  });
  expect(await sum.get({ timeout: 20 })).toBe(5);
  expect(await pySum.get({ timeout: 20 })).toBe(42);
  await expect(boom.get({ timeout: 20 })).rejects.toThrow(/exploded: on purpose/);
  await expect(pyBoom.get({ timeout: 20 })).rejects.toThrow(/python on purpose/);

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const dialogs = acceptDialogs(page);
  try {
    await page.goto(dashboard.url);
    // Both workers, online, with their software.
    const tsRow = page.locator(`tr[data-worker="${worker.hostname}"]`);
    const pyRow = page.locator(`tr[data-worker="${python.nodeName}"]`);
    await expect.poll(() => tsRow.textContent(), { timeout: 20_000 }).toMatch(/online.*celery-ts/s);
    await expect.poll(() => pyRow.textContent(), { timeout: 20_000 }).toMatch(/online.*py-celery/s);
    await expect.poll(() => page.locator(`tr[data-queue="${TS_QUEUE}"]`).count()).toBe(1);
    // The charts: failures and successes in the throughput bars, runtime percentiles per task.
    await expect.poll(() => page.locator("#throughput rect.failed").count()).toBeGreaterThan(0);
    await expect.poll(() => page.locator("#throughput rect.succeeded").count()).toBeGreaterThan(0);
    const addRuntime = page.locator("#runtimes tr", { hasText: "dash.add" });
    await expect.poll(() => addRuntime.locator("rect.p50").count()).toBe(1);
    await page.screenshot({ path: shot("dashboard-overview"), fullPage: true });

    // Purge from the page (confirmed): the ready messages of a queue are gone, never run.
    await client.sendTask("dash.add", { args: [1, 1], queue: IDLE_QUEUE });
    const idleRow = page.locator(`tr[data-queue="${IDLE_QUEUE}"]`);
    await expect.poll(() => idleRow.locator(".ready").textContent(), { timeout: 10_000 }).toBe("1");
    await idleRow.locator("button[data-purge]").click();
    await expect
      .poll(() => page.locator("#toast").textContent(), { timeout: 10_000 })
      .toBe(`purged 1 message from ${IDLE_QUEUE}`);
    expect(dialogs).toContain(`Delete every ready (waiting) message of the queue "${IDLE_QUEUE}"?`);
    // Gone from the broker, and the page's row says so.
    expect(await broker.depth!(IDLE_QUEUE)).toBe(0);
    await expect.poll(() => idleRow.locator(".ready").textContent(), { timeout: 10_000 }).toBe("0");

    // Rate limit from the page (prompted, then confirmed): the TS worker applies it.
    await addRuntime.locator("button[data-rate]").click();
    await expect
      .poll(() => page.locator("#toast").textContent(), { timeout: 10_000 })
      .toContain(`rate limit 10/s set for dash.add on`);
    expect(dialogs).toContain("Limit dash.add to 10/s on every worker?");

    // The task list has all four, with their states; the filter narrows it.
    await page.goto(`${dashboard.url}#/tasks`);
    for (const [id, state] of [
      [sum.id, "SUCCESS"],
      [pySum.id, "SUCCESS"],
      [boom.id, "FAILURE"],
      [pyBoom.id, "FAILURE"],
    ]) {
      await expect
        .poll(() => page.locator(`tr[data-task="${id}"]`).textContent(), { timeout: 20_000 })
        .toContain(state);
    }
    await page.selectOption("#state", "FAILURE");
    await expect.poll(() => page.locator(`tr[data-task="${sum.id}"]`).count()).toBe(0);
    await expect.poll(() => page.locator(`tr[data-task="${boom.id}"]`).count()).toBe(1);
    await page.screenshot({ path: shot("dashboard-tasks"), fullPage: true });

    // A failed task's page shows its traceback, TypeScript's and Python's.
    await page.goto(`${dashboard.url}#/task/${boom.id}`);
    await expect
      .poll(() => page.locator("#traceback").textContent(), { timeout: 10_000 })
      .toContain("exploded: on purpose");
    await page.screenshot({ path: shot("dashboard-failed-task"), fullPage: true });
    await page.goto(`${dashboard.url}#/task/${pyBoom.id}`);
    await expect
      .poll(() => page.locator("#traceback").textContent(), { timeout: 10_000 })
      .toContain("Traceback (most recent call last)");

    // A chain's task pages link its steps: the first names its child, the second its parent.
    const onTs = { queue: TS_QUEUE };
    const chained = await client.applyAsync(
      chain(s(tasks.add, 2, 3).set(onTs), s(tasks.add, 4).set(onTs)),
    );
    expect(await chained.get({ timeout: 20 })).toBe(9);
    const first = chained.parent!.id;
    await page.goto(`${dashboard.url}#/task/${first}`);
    await expect
      .poll(() => page.locator(`#task a[href="#/task/${chained.id}"]`).count(), {
        timeout: 10_000,
      })
      .toBe(1);
    await page.goto(`${dashboard.url}#/task/${chained.id}`);
    await expect
      .poll(() => page.locator(`#task a[href="#/task/${first}"]`).count(), { timeout: 10_000 })
      .toBeGreaterThan(0);
    await page.screenshot({ path: shot("dashboard-chain"), fullPage: true });

    // Retry from the page sends it again with the same arguments: it fails again, the same way.
    await page.goto(`${dashboard.url}#/task/${boom.id}`);
    await page.click("#retry");
    await page.waitForURL((url) => url.hash.startsWith("#/task/") && !url.hash.endsWith(boom.id));
    const againId = new URL(page.url()).hash.slice(7);
    await expect(client.asyncResult(againId).get({ timeout: 20 })).rejects.toThrow(
      /exploded: on purpose/,
    );

    // A running task, revoked and terminated from its page, stops and is stored REVOKED.
    const long = await client.sendTask("dash.slow", { args: [60_000], queue: TS_QUEUE });
    await page.goto(`${dashboard.url}#/task/${long.id}`);
    await expect
      .poll(() => page.locator("#task h2").textContent(), { timeout: 20_000 })
      .toContain("STARTED");
    // Its queue's row counts it as reserved (held by a worker), not ready.
    await page.goto(dashboard.url);
    const tsQueue = page.locator(`tr[data-queue="${TS_QUEUE}"]`);
    await expect
      .poll(() => tsQueue.locator(".reserved").textContent(), { timeout: 10_000 })
      .toBe("1");
    expect(await tsQueue.locator(".ready").textContent()).toBe("0");
    await page.goto(`${dashboard.url}#/task/${long.id}`);
    await expect
      .poll(() => page.locator("#task h2").textContent(), { timeout: 10_000 })
      .toContain("STARTED");
    const started = Date.now();
    await page.click("#terminate");
    await expect(long.get({ timeout: 20 })).rejects.toThrow(/revoked/i);
    expect(Date.now() - started).toBeLessThan(20_000);
    await expect
      .poll(() => page.locator("#task h2").textContent(), { timeout: 10_000 })
      .toContain("REVOKED");
    expect(dialogs.some((d) => d.includes("Revoke dash.slow"))).toBe(true);
    await page.screenshot({ path: shot("dashboard-revoked"), fullPage: true });

    // At a phone's width the page needs no horizontal scroll of the page itself.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(dashboard.url);
    await expect.poll(() => page.locator(`tr[data-worker="${worker.hostname}"]`).count()).toBe(1);
    const overflow = Number(
      await page.evaluate("document.documentElement.scrollWidth - window.innerWidth"),
    );
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: shot("dashboard-phone"), fullPage: true });

    // A malformed address (a bad %-escape) and an answer that is not JSON (the sign-in gate's
    // 401, as once the token is gone) are shown as messages, not left blank by an uncaught error.
    const uncaught: string[] = [];
    page.on("pageerror", (error) => uncaught.push(error.message));
    await page.goto(`${dashboard.url}#/task/%E0%A4%A`);
    await expect
      .poll(() => page.locator("#task .error").textContent(), { timeout: 10_000 })
      .toContain("not a valid address");
    await page.route("**/api/tasks/signed-out", (route) =>
      route.fulfill({
        status: 401,
        contentType: "text/plain",
        body: "celery-ts dashboard: sign in\n",
      }),
    );
    await page.goto(`${dashboard.url}#/task/signed-out`);
    await expect
      .poll(() => page.locator("#task .error").textContent(), { timeout: 10_000 })
      .toBe("HTTP 401: celery-ts dashboard: sign in");
    expect(uncaught).toEqual([]);
  } finally {
    await page.close();
  }
}, 180_000);

it("counts, lists, replays and purges dead letters from the page", async () => {
  const [open, shut] = [`open-${run}`, `shut-${run}`];
  shutGates.add(open).add(shut);
  const replayed = await client.sendTask<string>("dash.gated", { args: [open], queue: TS_QUEUE });
  const purged = await client.sendTask<string>("dash.gated", { args: [shut], queue: TS_QUEUE });

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const dialogs = acceptDialogs(page);
  try {
    // The worker rejects both: the queue's row counts them (read from Redis each second).
    await page.goto(dashboard.url);
    const count = page.locator(`tr[data-queue="${TS_QUEUE}"] .dead-count`);
    await expect.poll(() => count.textContent(), { timeout: 20_000 }).toBe("2");
    await page.screenshot({ path: shot("dashboard-dead-letter-count"), fullPage: true });

    // Their list: task name and id, and the reason the task gave.
    await count.click();
    const row = (id: string) => page.locator(`tr[data-dead="${id}"]`);
    await expect
      .poll(() => row(replayed.id).textContent(), { timeout: 10_000 })
      .toMatch(new RegExp(`dash\\.gated.*gate ${open} is shut`, "s"));
    await expect.poll(() => row(purged.id).count()).toBe(1);
    await page.screenshot({ path: shot("dashboard-dead-letters"), fullPage: true });
    // At a phone's width the list scrolls inside its box, not the page.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(
      Number(await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")),
    ).toBeLessThanOrEqual(0);
    await page.screenshot({ path: shot("dashboard-dead-letters-phone"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    // Replayed from the page once its gate is open, the task runs.
    shutGates.delete(open);
    await row(replayed.id).locator("button[data-replay-task]").click();
    expect(await replayed.get({ timeout: 20 })).toBe(`passed ${open}`);
    await expect.poll(() => row(replayed.id).count(), { timeout: 10_000 }).toBe(0);
    expect(dialogs.at(-1)).toContain(`Put the dead letters of task ${replayed.id}`);
    await page.goto(`${dashboard.url}#/task/${replayed.id}`);
    await expect
      .poll(() => page.locator("#task h2").textContent(), { timeout: 20_000 })
      .toContain("SUCCESS");

    // Purge all: the list and the count are empty; the purged task never ran.
    await page.goto(`${dashboard.url}#/dead-letters/${TS_QUEUE}`);
    await expect.poll(() => row(purged.id).count(), { timeout: 10_000 }).toBe(1);
    await page.click("#purge-all");
    await expect.poll(() => page.locator("tr[data-dead]").count(), { timeout: 10_000 }).toBe(0);
    expect(dialogs.at(-1)).toContain(`Delete every dead letter of "${TS_QUEUE}" for good?`);
    await page.screenshot({ path: shot("dashboard-dead-letters-purged"), fullPage: true });
    await page.goto(dashboard.url);
    await expect.poll(() => count.textContent(), { timeout: 10_000 }).toBe("0");
    // Gone from the broker: no dead letter of the queue is left, the purged task's least of all.
    expect(await broker.deadLetters!(TS_QUEUE)).toEqual([]);
  } finally {
    shutGates.delete(shut);
    await page.close();
  }
}, 120_000);
