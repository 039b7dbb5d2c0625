import {
  isCeleryTsError,
  resolveBackend,
  resolveTransport,
  type DriverModule,
} from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import * as driver from "../src/index.ts";
import { parseRedisUrl } from "../src/internal/parse-url.ts";

// The package is a driver module for core's URL resolution.
const _driver: DriverModule = driver;

function configErrorOf(work: () => unknown): Error {
  try {
    work();
  } catch (error) {
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    return error as Error;
  }
  throw new Error("expected a CONFIG error");
}

describe("redis:// URLs", () => {
  it("reads host, port and database, with Celery's defaults", () => {
    expect(parseRedisUrl("redis://")).toEqual({
      redis: { host: "127.0.0.1", port: 6379, db: 0 },
      target: "127.0.0.1:6379/0",
    });
    expect(parseRedisUrl("redis://cache.internal:6380/5").redis).toEqual({
      host: "cache.internal",
      port: 6380,
      db: 5,
    });
    expect(parseRedisUrl("redis://localhost").redis).toMatchObject({ port: 6379, db: 0 });
    expect(parseRedisUrl("redis://[::1]:7000/2")).toMatchObject({
      redis: { host: "::1", port: 7000, db: 2 },
      target: "[::1]:7000/2",
    });
  });

  it("reads an ACL username and password, and a password alone, percent-decoded", () => {
    expect(parseRedisUrl("redis://user:pass@127.0.0.1:6379/3").redis).toEqual({
      host: "127.0.0.1",
      port: 6379,
      db: 3,
      username: "user",
      password: "pass",
    });
    expect(parseRedisUrl("redis://:s%40cret%2F@127.0.0.1/0").redis).toEqual({
      host: "127.0.0.1",
      port: 6379,
      db: 0,
      password: "s@cret/",
    });
    expect(parseRedisUrl("redis://worker@127.0.0.1/0").redis).toMatchObject({ username: "worker" });
  });

  it("turns on TLS for rediss://, verifying certificates unless ssl_cert_reqs says none", () => {
    expect(parseRedisUrl("rediss://:pw@redis.example.com:6380/0").redis).toEqual({
      host: "redis.example.com",
      port: 6380,
      db: 0,
      password: "pw",
      tls: {},
    });
    expect(parseRedisUrl("rediss://h/0?ssl_cert_reqs=CERT_NONE").redis.tls).toEqual({
      rejectUnauthorized: false,
    });
    expect(parseRedisUrl("rediss://h/0?ssl_cert_reqs=required").redis.tls).toEqual({
      rejectUnauthorized: true,
    });
  });

  it("reads kombu's and Celery's options from the query", () => {
    expect(
      parseRedisUrl(
        "redis://h/1?visibility_timeout=43200&global_keyprefix=app1:&result_expires=3600" +
          "&socket_connect_timeout=2.5&socket_timeout=10",
      ),
    ).toEqual({
      redis: { host: "h", port: 6379, db: 1, connectTimeout: 2_500, commandTimeout: 10_000 },
      target: "h:6379/1",
      visibilityTimeout: 43_200,
      keyPrefix: "app1:",
      expires: 3600,
    });
    expect(parseRedisUrl("redis://h/1?result_expires=0").expires).toBe(0);
  });

  it("reads reconnect_attempts, a whole number of 1 or more (the option's name in snake case)", () => {
    expect(parseRedisUrl("redis://h/1?reconnect_attempts=20").reconnectAttempts).toBe(20);
    expect(parseRedisUrl("redis://h/1").reconnectAttempts).toBeUndefined();
    for (const bad of ["0", "-1", "2.5", "many", ""]) {
      expect(
        configErrorOf(() => parseRedisUrl(`redis://h/1?reconnect_attempts=${bad}`)).message,
      ).toMatch(/reconnect_attempts must be a whole number of 1 or more/);
    }
  });
});

describe("Sentinel URLs", () => {
  it("reads redis+sentinel:// with several Sentinels, the master's name and its database", () => {
    expect(
      parseRedisUrl(
        "redis+sentinel://:masterpw@s1:26379,s2:26380,[fd00::3]/2?master_name=mymaster&sentinel_password=spw",
      ),
    ).toEqual({
      redis: {
        sentinels: [
          { host: "s1", port: 26_379 },
          { host: "s2", port: 26_380 },
          { host: "fd00::3", port: 26_379 },
        ],
        name: "mymaster",
        db: 2,
        password: "masterpw",
        sentinelPassword: "spw",
      },
      target: 'Sentinel master "mymaster" (db 2) via s1:26379,s2:26380,[fd00::3]:26379',
    });
  });

  it("reads Celery's ;-separated sentinel:// list, settings from the first", () => {
    expect(
      parseRedisUrl("sentinel://:pw@s1:26379/1;sentinel://s2:26380/1?master_name=cluster").redis,
    ).toEqual({
      sentinels: [
        { host: "s1", port: 26_379 },
        { host: "s2", port: 26_380 },
      ],
      name: "cluster",
      db: 1,
      password: "pw",
    });
  });

  it("needs the master's name", () => {
    expect(configErrorOf(() => parseRedisUrl("redis+sentinel://s1:26379/0")).message).toMatch(
      /master_name/,
    );
  });
});

describe("bad URLs", () => {
  it.each([
    ["another scheme", "amqp://guest@127.0.0.1//"],
    ["no scheme", "127.0.0.1:6379"],
    ["a database that is not a number", "redis://127.0.0.1:6379/celery"],
    ["a port that is not a port", "redis://127.0.0.1:99999/0"],
    ["several hosts without Sentinel", "redis://a:1,b:2/0"],
  ])("rejects %s with a CONFIG error that shows the accepted forms", (_case, url) => {
    const error = configErrorOf(() => parseRedisUrl(url));
    expect(error.message).toContain("redis://[[username]:password@]host[:port][/db]");
    expect(error.message).toContain("redis+sentinel://");
  });

  it("rejects unknown or misplaced parameters, naming the known ones", () => {
    expect(configErrorOf(() => parseRedisUrl("redis://h/0?visibility=5")).message).toMatch(
      /unknown parameter "visibility"; known: visibility_timeout/,
    );
    expect(configErrorOf(() => parseRedisUrl("redis://h/0?ssl_cert_reqs=none")).message).toMatch(
      /rediss:\/\//,
    );
    expect(configErrorOf(() => parseRedisUrl("redis://h/0?visibility_timeout=-1")).message).toMatch(
      /positive number of seconds/,
    );
  });

  it("never shows the password in an error", () => {
    const error = configErrorOf(() => parseRedisUrl("redis://user:hunter2@h/notadb"));
    expect(error.message).not.toContain("hunter2");
    expect(error.message).toContain("user:***@");
  });
});

describe("core's URL resolution", () => {
  it("builds a transport and a backend from redis://, rediss:// and redis+sentinel:// URLs without connecting", async () => {
    for (const url of [
      "redis://127.0.0.1:6379/0",
      "rediss://127.0.0.1:6380/0",
      "redis+sentinel://127.0.0.1:26379/0?master_name=m",
    ]) {
      const transport = await resolveTransport(url);
      const backend = await resolveBackend(url);
      expect([transport.name, backend.name]).toEqual(["redis", "redis"]);
      expect(transport.capabilities).toEqual({
        delayedDelivery: "worker",
        priority: "lower-first",
        deadLetter: true,
        redelivery: "after-lease",
        redeliveryWindow: 8,
        reportsConsuming: true,
      });
      await Promise.all([transport.close(), backend.close()]);
    }
  });

  it("rejects bad options with CONFIG errors", () => {
    expect(() => driver.createRedisTransport({ visibilityTimeout: 0 })).toThrow(
      /visibilityTimeout must be a number of seconds/,
    );
    expect(() => driver.createRedisTransport({ prioritySteps: [3, 6] })).toThrow(/prioritySteps/);
    expect(() => driver.createRedisTransport({ connection: { keyPrefix: "x:" } })).toThrow(
      /keyPrefix option of celery-ts/,
    );
    expect(() => driver.createRedisBackend({ expires: -1 })).toThrow(/expires/);
    for (const reconnectAttempts of [0, 1.5, -1, Number.NaN]) {
      expect(() => driver.createRedisTransport({ reconnectAttempts })).toThrow(
        /reconnectAttempts must be a whole number of 1 or more, or Infinity/,
      );
      expect(() => driver.createRedisBackend({ reconnectAttempts })).toThrow(/reconnectAttempts/);
    }
    expect(() => driver.createRedisTransport({ reconnectAttempts: Infinity })).not.toThrow();
  });
});
