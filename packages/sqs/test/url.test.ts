import { isCeleryTsError, resolveBackend, type DriverModule } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import * as driver from "../src/index.ts";
import { parseSqsUrl } from "../src/internal/parse-url.ts";

// The package is a driver module for core's URL resolution, with a broker and no backend.
const _driver: DriverModule = driver;

const caught = async (work: () => unknown): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
};

describe("sqs:// URLs", () => {
  it("reads kombu's forms", () => {
    expect(parseSqsUrl("sqs://")).toEqual({});
    expect(parseSqsUrl("sqs://AKIAEXAMPLE:secret@")).toEqual({
      credentials: { accessKeyId: "AKIAEXAMPLE", secretAccessKey: "secret" },
    });
    // Secret keys contain / and +: percent-encoded in the URL, as kombu's docs say.
    expect(parseSqsUrl("sqs://AKIA:ab%2Fcd%2Bef@/").credentials).toEqual({
      accessKeyId: "AKIA",
      secretAccessKey: "ab/cd+ef",
    });
  });

  it("reads a host as the endpoint, http unless is_secure, as kombu does", () => {
    expect(parseSqsUrl("sqs://127.0.0.1:4566")).toEqual({ endpoint: "http://127.0.0.1:4566" });
    expect(parseSqsUrl("sqs://k:s@localhost:4566/")).toEqual({
      endpoint: "http://localhost:4566",
      credentials: { accessKeyId: "k", secretAccessKey: "s" },
    });
    expect(parseSqsUrl("sqs://sqs.internal?is_secure=true").endpoint).toBe("https://sqs.internal");
  });

  it("reads the options kombu takes as transport options", () => {
    expect(
      parseSqsUrl(
        "sqs://?region=eu-west-1&queue_name_prefix=prod-&visibility_timeout=60" +
          "&wait_time_seconds=20&max_receive_count=5&sqs_base64_encoding=false" +
          "&endpoint=http%3A%2F%2F127.0.0.1%3A4566",
      ),
    ).toEqual({
      region: "eu-west-1",
      queueNamePrefix: "prod-",
      visibilityTimeout: 60,
      waitTime: 20,
      maxReceiveCount: 5,
      base64Encoding: false,
      endpoint: "http://127.0.0.1:4566",
    });
  });

  it.each([
    ["another scheme", "redis://127.0.0.1:6379/0", /not an SQS URL/],
    ["a key without a secret", "sqs://AKIA@", /not both/],
    ["an unknown parameter", "sqs://?visibility=5", /unknown parameter "visibility"/],
    ["a bad number", "sqs://?visibility_timeout=soon", /whole number/],
    ["a bad flag", "sqs://?is_secure=maybe", /true or false/],
    ["a host and an endpoint", "sqs://h:1?endpoint=http://x", /both a host/],
  ])("rejects %s with a CONFIG error", async (_case, url, message) => {
    const error = await caught(() => parseSqsUrl(url));
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toMatch(message);
  });

  it("checks option values when the transport is built, without any I/O", async () => {
    const transport = driver.createTransportFromUrl("sqs://k:s@127.0.0.1:9?region=us-east-1");
    expect(transport.name).toBe("sqs");
    await transport.close();
    const error = await caught(() => driver.createTransportFromUrl("sqs://?wait_time_seconds=30"));
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toMatch(
      /waitTime must be a whole number of seconds from 1 to 20/,
    );
  });

  it("has no result backend: core says so and names the alternatives", async () => {
    expect("createBackendFromUrl" in driver).toBe(false);
    const error = await caught(() => resolveBackend("sqs://"));
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toMatch(/@celery-ts\/sqs has no result backend.*redis/);
  });
});
