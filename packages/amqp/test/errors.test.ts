import { createServer, type AddressInfo, type Socket } from "node:net";
import { isCeleryTsError, type ErrorCode } from "@celery-ts/core";
import { waitAbsenceWindow } from "@celery-ts/testing";
import { describe, expect, it } from "vitest";
import { createAmqpTransport, createRpcBackend } from "../src/index.ts";
import { mapAmqpError } from "../src/internal/errors.ts";

/** What amqplib throws when the server closes a channel or the connection. */
function serverError(code: number, name: string, text: string): Error {
  return Object.assign(
    new Error(`Channel closed by server: ${code} (${name}) with message "${text}"`),
    {
      code,
    },
  );
}

const caught = async (work: () => Promise<unknown>): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
};

describe("native amqplib errors, mapped", () => {
  it("names the queue and the argument of a declaration mismatch", () => {
    const error = mapAmqpError(
      serverError(
        406,
        "PRECONDITION-FAILED",
        "PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'celery' in vhost '/': " +
          "received the value '10' of type 'signedint' but current is none",
      ),
      'declare the queue "celery"',
    );
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/^\[celery-ts:amqp\] cannot declare the queue "celery": /);
    expect(error.message).toContain(
      'the queue "celery" (vhost "/") already exists with a different x-max-priority: it is none ' +
        "on the server, but celery-ts declares '10' of type 'signedint'",
    );
    expect(error.cause).toBeInstanceOf(Error);
  });

  it("says which exchange has another type", () => {
    const error = mapAmqpError(
      serverError(
        406,
        "PRECONDITION-FAILED",
        "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'fan' in vhost '/': received " +
          "'fanout' but current is 'direct'",
      ),
      "declare",
    );
    expect(error.message).toContain(
      `the exchange "fan" (vhost "/") already exists with a different type: it is direct on the server, but celery-ts declares fanout`,
    );
  });

  it.each<[string, Error, ErrorCode, boolean]>([
    [
      "a refused login",
      new Error(
        'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"',
      ),
      "CONFIG",
      false,
    ],
    [
      "a missing vhost",
      new Error(
        'Connection closed: 530 (NOT-ALLOWED) with message "NOT_ALLOWED - vhost nope not found"',
      ),
      "CONFIG",
      false,
    ],
    [
      "an operator closing the connection",
      serverError(320, "CONNECTION-FORCED", "CONNECTION_FORCED - closed via management plugin"),
      "CONNECTION",
      true,
    ],
    [
      "a queue deleted behind our back",
      serverError(404, "NOT-FOUND", "NOT_FOUND - no queue 'q' in vhost '/'"),
      "CONNECTION",
      true,
    ],
    [
      "an exclusive queue",
      serverError(405, "RESOURCE-LOCKED", "RESOURCE_LOCKED - cannot obtain exclusive access"),
      "CONFIG",
      false,
    ],
    [
      "global QoS on a quorum queue",
      new Error(
        'Connection closed: 540 (NOT-IMPLEMENTED) with message "NOT_IMPLEMENTED - queue q does not support global qos"',
      ),
      "CONFIG",
      false,
    ],
    [
      "a refused socket",
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
      "CONNECTION",
      true,
    ],
    [
      "a reset socket",
      Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }),
      "CONNECTION",
      true,
    ],
    [
      "a bad certificate",
      Object.assign(new Error("self signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }),
      "CONFIG",
      false,
    ],
    ["a closed channel", new Error("Channel closed"), "CONNECTION", true],
    [
      "headers over 64 KiB",
      new RangeError(
        "Encoded field table (headers or arguments) exceeds the 65536 byte encoding buffer",
      ),
      "ENCODE",
      false,
    ],
  ])("maps %s to %s (retryable: %s)", (_case, native, code, retryable) => {
    const error = mapAmqpError(native, "do it");
    expect(isCeleryTsError(error, code)).toBe(true);
    expect(error.retryable).toBe(retryable);
    expect(error.message).toMatch(/^\[celery-ts:amqp\] cannot do it/);
    expect(error.cause).toBe(native);
  });

  it("passes celery-ts errors through", () => {
    const own = mapAmqpError(new Error("x"), "a");
    expect(mapAmqpError(own, "b")).toBe(own);
  });
});

describe("a broker that is not there", () => {
  // Nothing listens on port 1 of the loopback: connecting is refused at once.
  const url = "amqp://guest:guest@127.0.0.1:1//";

  it("rejects connect(), publish() and purge() with a retryable CONNECTION error, quickly", async () => {
    const transport = createAmqpTransport({ url, connectTimeout: 1 });
    const started = Date.now();
    for (const attempt of [
      () => transport.connect(),
      () =>
        transport.publish(
          {
            body: "[]",
            contentType: "application/json",
            contentEncoding: "utf-8",
            headers: {},
            properties: {},
          },
          { queue: "q" },
        ),
      () => transport.purge("q"),
    ]) {
      const error = await caught(attempt);
      expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
      expect(error).toMatchObject({ retryable: true });
      expect((error as Error).message).toMatch(/RabbitMQ cannot be reached .*ECONNREFUSED/);
    }
    expect(Date.now() - started).toBeLessThan(3_000);
    await transport.close();
  });

  it("gives up on a broker that accepts the connection but never answers, in bounded time", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as AddressInfo;
    const transport = createAmqpTransport({
      url: `amqp://guest:guest@127.0.0.1:${port}//`,
      connectTimeout: 0.3,
    });
    const started = Date.now();
    const error = await caught(() =>
      transport.publish(
        {
          body: "[]",
          contentType: "application/json",
          contentEncoding: "utf-8",
          headers: {},
          properties: {},
        },
        { queue: "q" },
      ),
    );
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect(error).toMatchObject({ retryable: true });
    expect(Date.now() - started).toBeLessThan(2_000);
    await transport.close();
    sockets.forEach((socket) => socket.destroy());
    await new Promise((resolve) => silent.close(resolve));
  });

  it("rejects the rpc backend's connect() the same way", async () => {
    const backend = createRpcBackend({ url, connectTimeout: 1 });
    const error = await caught(() => backend.connect());
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect(error).toMatchObject({ retryable: true });
    await backend.close();
  });

  it("keeps a consumer retrying instead of failing, until it is stopped", async () => {
    const transport = createAmqpTransport({
      url,
      reconnectInitialDelay: 0.02,
      reconnectMaxDelay: 0.05,
    });
    const controller = new AbortController();
    const consuming = transport.consume(["q"], () => undefined, {
      prefetch: 1,
      signal: controller.signal,
    });
    let settled = false;
    void consuming.finally(() => (settled = true));
    await waitAbsenceWindow(transport); // a declared window: consume() has not given up
    expect(settled).toBe(false);
    controller.abort();
    await consuming;
    await transport.close();
  });

  it("fails with CLOSED after close()", async () => {
    const transport = createAmqpTransport({ url });
    await transport.close();
    await transport.close();
    const error = await caught(() => transport.connect());
    expect(isCeleryTsError(error, "CLOSED")).toBe(true);
    const consuming = await caught(() =>
      transport.consume(["q"], () => undefined, {
        prefetch: 1,
        signal: new AbortController().signal,
      }),
    );
    expect(isCeleryTsError(consuming, "CLOSED")).toBe(true);
  });
});
