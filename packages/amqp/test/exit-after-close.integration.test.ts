import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BROKER_URL, rabbitAdmin, unique } from "./support/rabbit.ts";

const admin = rabbitAdmin();
afterAll(() => admin.cleanup());

/** The URL with a query parameter added. */
const withParam = (url: string, param: string): string =>
  `${url}${url.includes("?") ? "&" : "?"}${param}`;

describe("a client process on RabbitMQ", () => {
  // The connect timeout (30 s here) also bounds how long close() waits for unconfirmed publishes:
  // a timer of that length left running would keep the process alive for 30 s after close().
  it("ends as soon as close() resolved, with no timer left running", async () => {
    const queue = unique("exit");
    admin.trackQueue(queue);
    const broker = withParam(BROKER_URL, "connect_timeout=30");
    const backend = withParam(BROKER_URL.replace(/^amqp/, "rpc"), "connect_timeout=30");
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, "fixtures/send-and-close.ts"), broker, backend, queue],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let closedAt: number | undefined;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (chunk.includes("closed")) closedAt ??= Date.now();
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    const lived = Date.now() - closedAt!;
    expect(code).toBe(0);
    expect(closedAt).toBeDefined();
    // Well under the 30 s a leftover timer would hold it, with room for a loaded machine.
    expect(lived).toBeLessThan(10_000);
  }, 60_000);
});
