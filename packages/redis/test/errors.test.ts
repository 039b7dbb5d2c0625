import { createServer } from "node:net";
import { isCeleryTsError } from "@celery-ts/core";
import { ReplyError } from "ioredis";
import { describe, expect, it } from "vitest";
import {
  createBackendFromUrl,
  createRedisBackend,
  createRedisTransport,
  createTransportFromUrl,
} from "../src/index.ts";
import { mapRedisError } from "../src/internal/errors.ts";

const TARGET = "10.0.0.7:6380/2";

const systemError = (code: string): Error =>
  Object.assign(new Error(`connect ${code} 10.0.0.7:6380`), { code, syscall: "connect" });
const reply = (message: string): Error => new ReplyError(message) as Error;
const named = (name: string, message: string): Error => Object.assign(new Error(message), { name });

describe("native Redis errors, mapped", () => {
  it.each([
    [
      "ECONNREFUSED",
      systemError("ECONNREFUSED"),
      "CONNECTION",
      true,
      /cannot reach Redis .*is the server running/,
    ],
    ["ECONNRESET", systemError("ECONNRESET"), "CONNECTION", true, /cannot reach Redis/],
    ["ETIMEDOUT", systemError("ETIMEDOUT"), "CONNECTION", true, /cannot reach Redis/],
    ["ENOTFOUND", systemError("ENOTFOUND"), "CONNECTION", true, /check the host name/],
    [
      "a closed connection",
      new Error("Connection is closed."),
      "CONNECTION",
      true,
      /lost the connection/,
    ],
    [
      "no offline queue",
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      "CONNECTION",
      true,
      /lost the connection/,
    ],
    [
      "a command timeout",
      new Error("Command timed out"),
      "CONNECTION",
      true,
      /lost the connection/,
    ],
    [
      "ioredis giving up",
      named("MaxRetriesPerRequestError", "Reached the max retries per request limit (which is 0)."),
      "CONNECTION",
      true,
      /lost the connection/,
    ],
    [
      "an aborted command",
      named("AbortError", "Command aborted due to connection close"),
      "CONNECTION",
      true,
      /lost the connection/,
    ],
    [
      "NOAUTH",
      reply("NOAUTH Authentication required."),
      "CONFIG",
      false,
      /check the username and password/,
    ],
    [
      "NOAUTH in the ready check",
      new Error("Ready check failed: NOAUTH Authentication required."),
      "CONFIG",
      false,
      /check the username and password/,
    ],
    [
      "WRONGPASS",
      reply("WRONGPASS invalid username-password pair or user is disabled."),
      "CONFIG",
      false,
      /check the username and password/,
    ],
    [
      "NOPERM",
      reply("NOPERM this user has no permissions to run the 'evalsha' command"),
      "CONFIG",
      false,
      /ACL/,
    ],
    [
      "LOADING",
      reply("LOADING Redis is loading the dataset in memory"),
      "CONNECTION",
      true,
      /cannot serve the command now/,
    ],
    [
      "READONLY (a failover)",
      reply("READONLY You can't write against a read only replica."),
      "CONNECTION",
      true,
      /retry later/,
    ],
    [
      "OOM",
      reply("OOM command not allowed when used memory > 'maxmemory'."),
      "CONNECTION",
      true,
      /retry later/,
    ],
    [
      "WRONGTYPE",
      reply("WRONGTYPE Operation against a key holding the wrong kind of value"),
      "CONNECTION",
      false,
      /refused a command: WRONGTYPE/,
    ],
  ])("%s becomes a %s error (retryable: %s)", (_case, native, code, retryable, text) => {
    const error = mapRedisError(native, TARGET);
    expect(isCeleryTsError(error, code as "CONFIG")).toBe(true);
    expect(error).toMatchObject({ retryable });
    expect((error as Error).message).toMatch(/^\[celery-ts:redis\] /);
    expect((error as Error).message).toContain(TARGET);
    expect((error as Error).message).toMatch(text);
    expect((error as Error).cause).toBe(native);
  });

  it("passes our own errors and other errors (bugs) through", () => {
    const bug = new RangeError("not Redis's");
    expect(mapRedisError(bug, TARGET)).toBe(bug);
    const ours = mapRedisError(systemError("ECONNREFUSED"), TARGET);
    expect(mapRedisError(ours, TARGET)).toBe(ours);
  });
});

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("a server that is not there", () => {
  it("fails connect(), publish() and store() with a retryable CONNECTION error, within the offline timeout", async () => {
    const port = await deadPort();
    const url = `redis://127.0.0.1:${port}/0`;
    const transport = createRedisTransport({ connection: url, offlineTimeout: 0.3 });
    const backend = createRedisBackend({ connection: url, offlineTimeout: 0.3 });
    const started = Date.now();
    const errors = await Promise.all([
      transport.connect().catch((e: unknown) => e),
      transport.purge("q").catch((e: unknown) => e),
      backend
        .store("t", {
          status: "SUCCESS",
          result: 1,
          traceback: null,
          children: [],
          date_done: null,
          task_id: "t",
        })
        .catch((e: unknown) => e),
      backend.get("t").catch((e: unknown) => e),
    ]);
    expect(Date.now() - started).toBeLessThan(2_000);
    for (const error of errors) {
      expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
      expect(error).toMatchObject({ retryable: true });
      expect((error as Error).message).toContain(`127.0.0.1:${port}/0`);
      expect((error as Error).message).toMatch(/ECONNREFUSED/);
    }
    await Promise.all([transport.close(), backend.close()]);
  });

  it("builds from URLs without connecting (no I/O until first use)", async () => {
    const port = await deadPort();
    const transport = createTransportFromUrl(`redis://127.0.0.1:${port}/0`);
    const backend = createBackendFromUrl(`redis://127.0.0.1:${port}/0`);
    expect([transport.name, backend.name]).toEqual(["redis", "redis"]);
    await Promise.all([transport.close(), backend.close()]);
  });

  it("rejects everything with a CLOSED error after close()", async () => {
    const transport = createRedisTransport({
      connection: `redis://127.0.0.1:${await deadPort()}/0`,
    });
    const backend = createRedisBackend({ connection: `redis://127.0.0.1:${await deadPort()}/0` });
    await transport.close();
    await backend.close();
    const attempts = [
      transport.connect(),
      transport.purge("q"),
      transport.consume(["q"], () => undefined, {
        prefetch: 1,
        signal: new AbortController().signal,
      }),
      backend.get("t"),
      backend.waitFor("t", { timeout: 0.1 }),
      backend.forget("t"),
    ];
    for (const attempt of attempts) {
      const error = await attempt.catch((e: unknown) => e);
      expect(isCeleryTsError(error, "CLOSED")).toBe(true);
    }
  });
});
