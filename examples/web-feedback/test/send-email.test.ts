// The email task against the real local SMTP server, on an in-process worker and broker, with
// retry delays shortened so that running out of retries takes milliseconds.
import { createClient, type Client } from "@celery-ts/client";
import { TaskFailedError, defineTask } from "@celery-ts/core";
import { createWorker, type Worker } from "@celery-ts/worker";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startMailServer, type MailServer } from "../src/mail-server.ts";
import { MailRejectedError, MailServerBusyError, deliver } from "../src/mailer.ts";
import { EMAIL_RETRY_POLICY, sendEmail } from "../src/tasks.ts";

// The real task, with the real policy except its delays.
const quickSendEmail = defineTask(sendEmail, sendEmail.run, {
  retry: { ...EMAIL_RETRY_POLICY, delay: 0.01, maxDelay: 0.05 },
});

const email = { to: "ana@example.com", subject: "Hello", text: "Hello, Ana." };

let mail: MailServer;
let worker: Worker;
let client: Client;
let n = 0;

beforeEach(async () => {
  mail = await startMailServer();
  process.env.SMTP_PORT = String(mail.port);
  const url = `memory://send-email-${++n}`;
  worker = createWorker({ broker: url, backend: url, tasks: [quickSendEmail] });
  await worker.start();
  client = createClient({ broker: url, backend: url });
});

afterEach(async () => {
  await client.close();
  await worker.stop();
  await mail.close();
});

describe("the email task", () => {
  it("retries with exponential backoff and full jitter, 5 times at most", () => {
    expect(sendEmail.options.retry).toEqual({
      maxRetries: 5,
      delay: 1,
      backoff: "exponential",
      maxDelay: 30,
      jitter: true,
    });
    expect(sendEmail.options.autoRetryFor).toEqual([MailServerBusyError]);
  });

  it("delivers a message", async () => {
    const result = await client.task(quickSendEmail).delay(email);
    expect(await result.get({ timeout: 10 })).toMatchObject({ to: "ana@example.com", attempts: 1 });
    expect(mail.received).toHaveLength(1);
    expect(mail.received[0]).toMatchObject({ to: ["ana@example.com"], subject: "Hello" });
    expect(mail.received[0]!.text).toContain("Hello, Ana.");
    expect(mail.received[0]!.headers["x-task-id"]).toBe(result.id);
  });

  it("retries when the server says 451 (try again later), then delivers", async () => {
    mail.refuseNext(2, 451);
    const result = await client.task(quickSendEmail).delay(email);
    expect(await result.get({ timeout: 10 })).toMatchObject({ attempts: 3 });
    expect(mail.refused.map((r) => r.code)).toEqual([451, 451]);
    expect(mail.received).toHaveLength(1);
    expect(mail.received[0]!.headers["x-delivery-attempt"]).toBe("3");
  });

  it("fails with the last refusal once its 5 retries are used up", async () => {
    mail.refuseNext(1000, 451);
    const result = await client.task(quickSendEmail).delay(email);
    const failure = await result.get({ timeout: 10, propagate: false });
    expect(failure).toBeInstanceOf(TaskFailedError);
    expect(failure).toMatchObject({ excType: "MailServerBusyError" });
    expect((failure as TaskFailedError).excMessage).toContain("451");
    expect(mail.refused).toHaveLength(1 + EMAIL_RETRY_POLICY.maxRetries);
    expect(mail.received).toHaveLength(0);
  });

  it("does not retry a permanent refusal (550)", async () => {
    mail.refuseNext(1, 550);
    const result = await client.task(quickSendEmail).delay(email);
    const failure = await result.get({ timeout: 10, propagate: false });
    expect(failure).toMatchObject({ excType: "MailRejectedError" });
    expect(mail.refused).toHaveLength(1);
  });
});

describe("deliver()", () => {
  it("calls an unreachable server busy, so the task retries", async () => {
    const closed = await startMailServer();
    await closed.close();
    await expect(
      deliver(email, { host: "127.0.0.1", port: closed.port, from: "a@example.com" }),
    ).rejects.toBeInstanceOf(MailServerBusyError);
  });

  it("sorts SMTP replies: 4xx busy, 5xx rejected", async () => {
    const settings = { host: "127.0.0.1", port: mail.port, from: "a@example.com" };
    mail.refuseNext(1, 421);
    await expect(deliver(email, settings)).rejects.toBeInstanceOf(MailServerBusyError);
    mail.refuseNext(1, 554);
    await expect(deliver(email, settings)).rejects.toBeInstanceOf(MailRejectedError);
  });
});
