import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  createTaskMessage,
  encodeTaskMessage,
  isCeleryTsError,
  resolveBackend,
  resolveTransport,
  type DriverModule,
} from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import * as driver from "../src/index.ts";
import { parseSqliteUrl } from "../src/internal/parse-url.ts";
import { useTempDir } from "./support/temp-dir.ts";

// The package is a driver module for core's URL resolution.
const _driver: DriverModule = driver;

describe("sqlite:// URLs", () => {
  const dir = useTempDir();

  it("reads three slashes as a path relative to the working directory", () => {
    expect(parseSqliteUrl("sqlite:///data/queue.db")).toEqual({ path: resolve("data/queue.db") });
    expect(parseSqliteUrl("sqlite:///queue.db").path).toBe(join(process.cwd(), "queue.db"));
  });

  it("reads four slashes as an absolute path", () => {
    expect(parseSqliteUrl("sqlite:////var/lib/app/queue.db")).toEqual({
      path: "/var/lib/app/queue.db",
    });
  });

  it("reads the optional parameters", () => {
    expect(
      parseSqliteUrl(
        "sqlite:////q.db?visibility_timeout=5&polling_interval=0.025&result_expires=3600",
      ),
    ).toEqual({
      path: "/q.db",
      visibilityTimeout: 5,
      pollInterval: 0.025,
      expires: 3600,
    });
  });

  it.each([
    ["no path", "sqlite://"],
    ["an empty path", "sqlite:///"],
    ["two slashes", "sqlite://queue.db"],
    ["another scheme", "redis://127.0.0.1:6379/0"],
    ["an in-memory database", "sqlite:///:memory:"],
  ])("rejects %s with a CONFIG error that shows the right forms", (_case, url) => {
    let error: unknown;
    try {
      parseSqliteUrl(url);
    } catch (e) {
      error = e;
    }
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toContain("sqlite:///relative/path.db");
    expect((error as Error).message).toContain("sqlite:////absolute/path.db");
  });

  it("rejects unknown parameters and bad numbers", () => {
    expect(() => parseSqliteUrl("sqlite:////q.db?lease=5")).toThrow(/unknown parameter "lease"/);
    expect(() => parseSqliteUrl("sqlite:////q.db?visibility_timeout=soon")).toThrow(
      /positive number of seconds/,
    );
    expect(() => parseSqliteUrl("sqlite:////q.db?polling_interval=0")).toThrow(
      /positive number of seconds/,
    );
  });

  it("builds a working transport and backend on one file, also through core's URL resolution", async () => {
    const path = join(dir(), "app.db");
    const url = `sqlite:///${path}?visibility_timeout=2`;
    const transport = await resolveTransport(url);
    const backend = await resolveBackend(url);
    expect([transport.name, backend.name]).toEqual(["sqlite", "sqlite"]);
    const queue = randomUUID();
    await transport.publish(encodeTaskMessage(createTaskMessage({ task: "url.t" })), { queue });
    await backend.store("t", {
      status: "SUCCESS",
      result: 1,
      traceback: null,
      children: [],
      date_done: null,
      task_id: "t",
    });
    expect(existsSync(path)).toBe(true);
    const [transportAgain, backendAgain] = [
      driver.createTransportFromUrl(url),
      driver.createBackendFromUrl(url),
    ];
    expect(await transportAgain.purge(queue)).toBe(1);
    expect((await backendAgain.get("t"))?.result).toBe(1);
    await Promise.all([transport, backend, transportAgain, backendAgain].map((c) => c.close()));
  });
});
