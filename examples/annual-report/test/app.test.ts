// The web app on its own (Fastify's inject, no network, no worker).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient, type Client } from "@celery-ts/client";
import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { YEARS, buildApp } from "../src/app.ts";
import { defaultBackend, loadConfig } from "../src/config.ts";
import { tempDir } from "./support.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let client: Client;
let app: FastifyInstance;
let n = 0;

beforeEach(async () => {
  dir = await tempDir("annual-report-app");
  const url = `memory://app-${++n}`;
  client = createClient({ broker: url, backend: url });
  app = await buildApp({ client, reportsDir: dir.path, pollIntervalMs: 1500 });
});

afterEach(async () => {
  await app.close();
  await client.close();
  await dir.remove();
});

describe("the annual-report app", () => {
  it("offers the years, from one before the ledger to the open one", async () => {
    expect(YEARS[0]).toBe(2018);
    expect(YEARS.at(-1)).toBe(2026);
    const response = await app.inject({ url: "/" });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain('<option value="2025" selected>2025</option>');
    expect(response.body).toContain("const POLL_MS = 1500;");
  });

  it("starts a report and answers 202 with the task id, which reads PENDING until a worker runs it", async () => {
    const response = await app.inject({ method: "POST", url: "/reports", payload: { year: 2024 } });
    expect(response.statusCode).toBe(202);
    const { id, statusUrl } = response.json<{ id: string; statusUrl: string }>();
    expect(statusUrl).toBe(`/status/${id}`);
    const status = await app.inject({ url: statusUrl });
    expect(status.json()).toEqual({ id, state: "PENDING" });
  });

  it("refuses a year that is not a year", async () => {
    for (const payload of [{ year: "last" }, { year: 20245 }, {}]) {
      const response = await app.inject({ method: "POST", url: "/reports", payload });
      expect(response.statusCode).toBe(400);
    }
  });

  it("serves a finished report, and 404 for any other", async () => {
    const id = "0d4f7a52-8a43-4d34-9a53-2c6f1b5a9e10";
    expect((await app.inject({ url: `/reports/${id}` })).statusCode).toBe(404);
    await writeFile(join(dir.path, `${id}.html`), "<h1>Annual report 2024</h1>");
    const response = await app.inject({ url: `/reports/${id}` });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain("Annual report 2024");
    expect((await app.inject({ url: "/reports/..%2F..%2Fetc%2Fpasswd" })).statusCode).toBe(404);
    expect((await app.inject({ url: "/status/not-an-id" })).statusCode).toBe(400);
  });
});

describe("configuration", () => {
  it("defaults to one SQLite file, and switches the broker with one URL", () => {
    const config = loadConfig({});
    expect(config.broker).toBe("sqlite:///.data/annual-report.db");
    expect(config.backend).toBe(config.broker);
    expect(config.port).toBe(3001);
    expect(config.pollIntervalMs).toBe(2000);
    expect(loadConfig({ CELERY_BROKER_URL: "redis://127.0.0.1:6379/0" }).backend).toBe(
      "redis://127.0.0.1:6379/0",
    );
    expect(loadConfig({ CELERY_BROKER_URL: "amqp://guest:guest@127.0.0.1:5672//" }).backend).toBe(
      "sqlite:///.data/annual-report.db",
    );
    expect(defaultBackend("amqp://x", "sqlite:///y.db")).toBe("sqlite:///y.db");
  });
});
