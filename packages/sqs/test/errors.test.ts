import { createServer } from "node:net";
import {
  OverLimit,
  PurgeQueueInProgress,
  QueueDoesNotExist,
  RequestThrottled,
  SQSServiceException,
} from "@aws-sdk/client-sqs";
import {
  createTaskMessage,
  encodeTaskMessage,
  isCeleryTsError,
  type Logger,
} from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { createSqsTransport } from "../src/index.ts";
import { mapSqsError } from "../src/internal/errors.ts";

const metadata = { $metadata: { httpStatusCode: 400 } };
const context = { action: "ReceiveMessage", queue: "tasks.email", sqsName: "prod-tasks-email" };

function serviceError(name: string, fault: "client" | "server", status = 400) {
  return new SQSServiceException({
    name,
    $fault: fault,
    message: `native ${name}`,
    $metadata: { httpStatusCode: status },
  });
}

const caught = async (work: () => Promise<unknown>): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
};

describe("AWS errors, mapped", () => {
  it("says a missing queue is missing, naming it both ways", () => {
    const error = mapSqsError(
      new QueueDoesNotExist({ message: "The specified queue does not exist.", ...metadata }),
      { ...context, endpoint: "http://127.0.0.1:4566" },
    );
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(
      /^\[celery-ts:sqs\] the SQS queue "tasks\.email" \(SQS name "prod-tasks-email"\) does not exist at http:\/\/127\.0\.0\.1:4566/,
    );
    expect(error.cause).toBeInstanceOf(QueueDoesNotExist);
  });

  it.each(["AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "KmsAccessDenied"])(
    "says %s is access denied, naming the queue and the permission",
    (name) => {
      const error = mapSqsError(serviceError(name, "client", 403), context);
      expect(isCeleryTsError(error, "CONFIG")).toBe(true);
      expect(error.retryable).toBe(false);
      expect(error.message).toContain("access denied");
      expect(error.message).toContain("sqs:ReceiveMessage");
      expect(error.message).toContain('"tasks.email"');
    },
  );

  it("says where credentials come from when there are none", () => {
    const native = Object.assign(new Error("Could not load credentials from any providers"), {
      name: "CredentialsProviderError",
    });
    const error = mapSqsError(native, context);
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect(error.message).toMatch(/AWS_ACCESS_KEY_ID/);
  });

  it.each([
    ["throttling", new RequestThrottled({ message: "slow down", ...metadata })],
    ["an over-limit", new OverLimit({ message: "too many in flight", ...metadata })],
    ["a purge under way", new PurgeQueueInProgress({ message: "purging", ...metadata })],
    ["ThrottlingException", serviceError("ThrottlingException", "client")],
    ["a 500", serviceError("InternalError", "server", 500)],
    ["a 503", serviceError("Whatever", "server", 503)],
  ])("makes %s a retryable CONNECTION error", (_case, native) => {
    const error = mapSqsError(native, context);
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('"tasks.email"');
  });

  it.each(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND"])(
    "makes %s a retryable CONNECTION error, also inside an AggregateError",
    (code) => {
      const socket = Object.assign(new Error(`connect ${code}`), { code });
      for (const native of [socket, new AggregateError([socket], "")]) {
        const error = mapSqsError(native, { ...context, endpoint: "http://127.0.0.1:1" });
        expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
        expect(error.retryable).toBe(true);
        expect(error.message).toContain(`cannot reach SQS at http://127.0.0.1:1 (${code})`);
      }
    },
  );

  it("keeps other client errors, not retryable, with the AWS code", () => {
    const error = mapSqsError(serviceError("InvalidParameterValue", "client"), context);
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain("InvalidParameterValue: native InvalidParameterValue");
  });

  it("passes celery-ts errors through", () => {
    const own = mapSqsError(new QueueDoesNotExist({ message: "gone", ...metadata }), context);
    expect(mapSqsError(own, context)).toBe(own);
  });
});

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === "string") throw new Error("no port");
  return address.port;
}

const credentials = { accessKeyId: "test", secretAccessKey: "test" };

describe("a server that is not there", () => {
  it("publish and connect fail with a retryable CONNECTION error naming the endpoint", async () => {
    const endpoint = `http://127.0.0.1:${await deadPort()}`;
    const transport = createSqsTransport({
      endpoint,
      region: "us-east-1",
      credentials,
      maxAttempts: 2,
    });
    const message = encodeTaskMessage(createTaskMessage({ task: "t" }));
    for (const error of [
      await caught(() => transport.publish(message, { queue: "celery" })),
      await caught(() => transport.connect()),
    ]) {
      expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
      expect(error).toMatchObject({ retryable: true });
      expect((error as Error).message).toContain(`cannot reach SQS at ${endpoint} (ECONNREFUSED)`);
    }
    await transport.close();
  });

  it("a consumer keeps retrying, logging, until it is stopped", async () => {
    const warnings: string[] = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn: (message, fields) => warnings.push(`${message} ${String(fields?.error)}`),
      error() {},
    };
    const transport = createSqsTransport({
      endpoint: `http://127.0.0.1:${await deadPort()}`,
      region: "us-east-1",
      credentials,
      maxAttempts: 1,
      logger,
    });
    const stop = new AbortController();
    const consuming = transport.consume(["celery"], () => {}, { prefetch: 1, signal: stop.signal });
    while (warnings.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(warnings[0]).toMatch(/could not take messages; retrying.*ECONNREFUSED/);
    stop.abort();
    await consuming;
    await transport.close();
  });
});

describe("bad options", () => {
  it.each([
    [{ visibilityTimeout: 0 }, /visibilityTimeout/],
    [{ visibilityTimeout: 43_201 }, /visibilityTimeout/],
    [{ waitTime: 21 }, /waitTime/],
    [{ maxDelay: 901 }, /maxDelay/],
    [{ ackBatchWindow: -1 }, /ackBatchWindow/],
    [{ endpoint: "127.0.0.1:4566" }, /endpoint must be an http\(s\) URL/],
  ])("%o is a CONFIG error", (options, message) => {
    let error: unknown;
    try {
      createSqsTransport(options);
    } catch (e) {
      error = e;
    }
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toMatch(message);
  });

  it("checks predefined queues when built: URLs, and FIFO names (kombu's check)", () => {
    expect(() =>
      createSqsTransport({
        predefinedQueues: { "jobs.fifo": "http://127.0.0.1:1/000000000000/jobs" },
      }),
    ).toThrow(/must both end in \.fifo/);
    expect(() => createSqsTransport({ predefinedQueues: { celery: "celery" } })).toThrow(
      /predefinedQueues\["celery"\] must be the queue's http\(s\) URL/,
    );
  });

  it("names an invalid queue name when it is used", async () => {
    const transport = createSqsTransport({ region: "us-east-1", credentials });
    const error = await caught(() =>
      transport.publish(encodeTaskMessage(createTaskMessage({ task: "t" })), { queue: "café" }),
    );
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toContain('the queue "café" becomes the SQS queue name');
    await transport.close();
  });
});
