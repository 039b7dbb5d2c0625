import { isCeleryTsError, type DriverModule } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import * as driver from "../src/index.ts";
import { parseAmqpUrl, redact } from "../src/internal/parse-url.ts";

// The package is a driver module for core's URL resolution (amqp://, amqps:// and rpc://).
const _driver: DriverModule = driver;

const configErrorOf = (work: () => unknown): Error => {
  try {
    work();
  } catch (error) {
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    return error as Error;
  }
  throw new Error("expected a CONFIG error");
};

describe("amqp:// URLs, read as kombu reads them", () => {
  it("reads user, password, host, port and the vhost", () => {
    expect(parseAmqpUrl("amqp://alice:s3cret@rabbit.internal:5673/production")).toEqual({
      protocol: "amqp",
      hostname: "rabbit.internal",
      port: 5673,
      username: "alice",
      password: "s3cret",
      vhost: "production",
    });
  });

  it.each([
    ["amqp://guest:guest@localhost:5672//", "/"],
    ["amqp://guest:guest@localhost:5672/", "/"],
    ["amqp://guest:guest@localhost:5672", "/"],
    ["amqp://localhost/%2F", "/"],
    ["amqp://localhost/app", "app"],
    ["amqp://localhost/app%2Fblue", "app/blue"],
    ["amqp://localhost//app", "/app"],
  ])("reads the vhost of %s as %j", (url, vhost) => {
    expect(parseAmqpUrl(url).vhost).toBe(vhost);
  });

  it("fills in Celery's defaults: guest, localhost, 5672 (5671 for amqps)", () => {
    expect(parseAmqpUrl("amqp://")).toMatchObject({
      hostname: "localhost",
      port: 5672,
      username: "guest",
      password: "guest",
      vhost: "/",
    });
    expect(parseAmqpUrl("amqps://broker.example.com//")).toMatchObject({
      protocol: "amqps",
      port: 5671,
    });
    expect(parseAmqpUrl("pyamqp://h//").protocol).toBe("amqp");
  });

  it("percent-decodes user and password", () => {
    expect(parseAmqpUrl("amqp://us%40er:p%3Ass%2Fw%40rd@h//")).toMatchObject({
      username: "us@er",
      password: "p:ss/w@rd",
    });
  });

  it("reads IPv6 hosts", () => {
    expect(parseAmqpUrl("amqp://[::1]:5672//").hostname).toBe("::1");
  });

  it("reads heartbeat, connect_timeout and kombu's ssl_* parameters", () => {
    expect(
      parseAmqpUrl(
        "amqps://h//?heartbeat=30&connect_timeout=2.5&ssl_cert_reqs=CERT_NONE&ssl_ca_certs=/ca.pem" +
          "&ssl_certfile=/c.pem&ssl_keyfile=/k.pem",
      ),
    ).toMatchObject({
      heartbeat: 30,
      connectTimeoutMs: 2_500,
      tls: {
        rejectUnauthorized: false,
        caFile: "/ca.pem",
        certFile: "/c.pem",
        keyFile: "/k.pem",
      },
    });
  });

  it.each([
    ["another scheme", "redis://localhost:6379/0"],
    ["no scheme", "localhost:5672"],
    ["several brokers (kombu's failover list)", "amqp://a//;amqp://b//"],
  ])("rejects %s with a CONFIG error that shows the right form", (_case, url) => {
    expect(configErrorOf(() => parseAmqpUrl(url)).message).toContain(
      "amqp://user:password@host:5672/vhost",
    );
  });

  it("rejects unknown parameters, bad numbers, and ssl_* without amqps", () => {
    expect(configErrorOf(() => parseAmqpUrl("amqp://h//?hearbeat=5")).message).toMatch(
      /unknown parameter "hearbeat"/,
    );
    expect(configErrorOf(() => parseAmqpUrl("amqp://h//?heartbeat=soon")).message).toMatch(
      /heartbeat .* seconds/,
    );
    expect(configErrorOf(() => parseAmqpUrl("amqp://h//?ssl_cert_reqs=CERT_NONE")).message).toMatch(
      /amqps:\/\//,
    );
  });

  it("reads reconnect_attempts (the reconnectAttempts option; the option wins)", async () => {
    expect(parseAmqpUrl("amqp://h//?reconnect_attempts=20").reconnectAttempts).toBe(20);
    for (const bad of ["0", "2.5", "many"]) {
      expect(
        configErrorOf(() => parseAmqpUrl(`amqp://h//?reconnect_attempts=${bad}`)).message,
      ).toMatch(/reconnect_attempts .* must be a whole number of 1 or more/);
    }
    const { resolveConnection } = await import("../src/internal/options.ts");
    expect(resolveConnection({ url: "amqp://h//?reconnect_attempts=3" }).reconnectAttempts).toBe(3);
    expect(
      resolveConnection({ url: "amqp://h//?reconnect_attempts=3", reconnectAttempts: 7 })
        .reconnectAttempts,
    ).toBe(7);
    expect(resolveConnection({ url: "amqp://h//" }).reconnectAttempts).toBe(Infinity);
  });

  it("never shows the password in an error", () => {
    const error = configErrorOf(() => parseAmqpUrl("amqp://bob:hunter2@h//?x=1"));
    expect(error.message).not.toContain("hunter2");
    expect(redact("amqp://bob:hunter2@h//")).toBe("amqp://bob:***@h//");
  });
});

describe("driver functions", () => {
  it("builds a transport from amqp://, amqps:// and pyamqp:// without connecting", () => {
    for (const url of ["amqp://guest:guest@127.0.0.1:1//", "amqps://h//", "pyamqp://h//"]) {
      const transport = driver.createTransportFromUrl(url);
      expect(transport.name).toBe("amqp");
      expect(transport.capabilities).toEqual({
        delayedDelivery: "native",
        priority: false,
        deadLetter: true,
        redelivery: "on-disconnect",
        redeliveryWindow: 0,
        reportsConsuming: true,
      });
    }
  });

  it("takes the dead-letter and message-size parameters other brokers take", () => {
    const base = "amqp://guest:guest@127.0.0.1:1//";
    const off = driver.createTransportFromUrl(`${base}?dead_letters=off&heartbeat=5`);
    expect(off.capabilities.deadLetter).toBe(false);
    expect(off.deadLetters).toBeUndefined();
    const bounded = driver.createTransportFromUrl(
      `${base}?dead_letter_max_count=5&dead_letter_max_bytes=4096&dead_letter_max_age=60&max_message_bytes=1024`,
    );
    expect(bounded.capabilities.deadLetter).toBe(true);
    expect(typeof bounded.replayDeadLetters).toBe("function");
    expect(typeof bounded.purgeDeadLetters).toBe("function");
    expect(
      configErrorOf(() => driver.createTransportFromUrl(`${base}?dead_letters=maybe`)).message,
    ).toMatch(/on or off/);
    expect(
      configErrorOf(() => driver.createTransportFromUrl(`${base}?max_message_bytes=-1`)).message,
    ).toMatch(/max_message_bytes/);
  });

  it("builds remote control and events from a broker URL that carries those parameters", () => {
    // The worker CLI adds --dead-letter* and --max-message-bytes to the broker URL, and builds
    // its remote control from the same URL.
    const url =
      "amqp://guest:guest@127.0.0.1:1//?heartbeat=5&dead_letters=off&dead_letter_max_count=5" +
      "&dead_letter_max_bytes=4096&dead_letter_max_age=60&max_message_bytes=1024";
    expect(typeof driver.createBroadcastFromUrl(url).publish).toBe("function");
    expect(configErrorOf(() => driver.createBroadcastFromUrl(`${url}&hearbeat=5`)).message).toMatch(
      /unknown parameter "hearbeat"/,
    );
  });

  it("says that rpc:// is a result backend, not a broker", () => {
    expect(configErrorOf(() => driver.createTransportFromUrl("rpc://")).message).toMatch(
      /result backend URL/,
    );
  });

  it("builds the rpc backend from rpc:// (Celery's default broker), rpc://host and amqp://", () => {
    for (const url of [
      "rpc://",
      "rpc://guest:guest@127.0.0.1:5672//",
      "amqp://h//",
      "amqps://h//",
    ]) {
      expect(driver.createBackendFromUrl(url).name).toBe("rpc");
    }
    expect(configErrorOf(() => driver.createBackendFromUrl("redis://h")).message).toMatch(
      /rpc:\/\//,
    );
    expect(configErrorOf(() => driver.createBackendFromUrl("rpc://h//?nope=1")).message).toMatch(
      /unknown parameter/,
    );
  });

  it("rejects bad options at construction with CONFIG errors", () => {
    expect(configErrorOf(() => driver.createAmqpTransport({ maxPriority: 0 })).message).toMatch(
      /maxPriority/,
    );
    expect(
      configErrorOf(() => driver.createAmqpTransport({ maxPriority: 10, queueType: "quorum" }))
        .message,
    ).toMatch(/quorum/);
    expect(
      configErrorOf(() =>
        driver.createAmqpTransport({ queues: { fan: { broadcast: true, type: "quorum" } } }),
      ).message,
    ).toMatch(/broadcast/);
    expect(configErrorOf(() => driver.createAmqpTransport({ publishTimeout: -1 })).message).toMatch(
      /publishTimeout must be/,
    );
    expect(configErrorOf(() => driver.createRpcBackend({ replyQueueExpires: 0 })).message).toMatch(
      /replyQueueExpires must be/,
    );
  });

  it("declares capabilities from the options", () => {
    const transport = driver.createAmqpTransport({
      maxPriority: 10,
      deadLetter: { exchange: "dlx" },
      delayedDelivery: "worker",
    });
    expect(transport.capabilities).toEqual({
      delayedDelivery: "worker",
      priority: "higher-first",
      deadLetter: true,
      redelivery: "on-disconnect",
      redeliveryWindow: 0,
      reportsConsuming: true,
    });
    expect(typeof transport.deadLetters).toBe("function");
    // On by default, as on every broker; off only when asked.
    expect(typeof driver.createAmqpTransport().deadLetters).toBe("function");
    const off = driver.createAmqpTransport({ deadLetters: false });
    expect(off.capabilities.deadLetter).toBe(false);
    expect(off.deadLetters).toBeUndefined();
  });
});
