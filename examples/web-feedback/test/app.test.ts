// The web app on its own (Fastify's inject, no network): what it saves, what it enqueues, and
// that it answers without running any task.
import { createClient, type Client } from "@celery-ts/client";
import { defineTask } from "@celery-ts/core";
import { createWorker } from "@celery-ts/worker";
import type { FastifyInstance } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { buildApp, parseFeedback } from "../src/app.ts";
import { defaultBackend, loadConfig } from "../src/config.ts";
import { createFeedbackStore, type FeedbackStore } from "../src/feedback-store.ts";
import type { Email } from "../src/mailer.ts";
import { sendEmail } from "../src/tasks.ts";
import { tempDir } from "./support.ts";

let dir: Awaited<ReturnType<typeof tempDir>>;
let url: string;
let client: Client;
let store: FeedbackStore;
let app: FastifyInstance;
let n = 0;

beforeEach(async () => {
  dir = await tempDir("web-feedback-app");
  url = `memory://app-${++n}`;
  client = createClient({ broker: url, backend: url });
  store = createFeedbackStore(`${dir.path}/feedback.jsonl`);
  app = await buildApp({ client, store, supportAddress: "support@example.com" });
});

afterEach(async () => {
  await app.close();
  await client.close();
  await dir.remove();
});

const form = (
  fields: Record<string, string>,
): { headers: Record<string, string>; payload: string } => ({
  headers: { "content-type": "application/x-www-form-urlencoded" },
  payload: new URLSearchParams(fields).toString(),
});

describe("the feedback form", () => {
  it("shows the form", async () => {
    const response = await app.inject({ url: "/" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toContain("text/html");
    expect(response.body).toContain('<form method="post" action="/feedback">');
  });

  it("saves the feedback, enqueues two emails and redirects (303) without running them", async () => {
    const response = await app.inject({
      method: "POST",
      url: "/feedback",
      ...form({ name: " Ana ", email: "ana@example.com", message: "Search is slow." }),
    });
    expect(response.statusCode).toBe(303);
    const [saved] = await store.list();
    expect(saved).toMatchObject({
      name: "Ana",
      email: "ana@example.com",
      message: "Search is slow.",
    });
    expect(response.headers.location).toBe(`/thanks?id=${saved!.id}`);

    // No worker ran yet: the two emails wait in the broker. A worker with a stand-in
    // implementation of the task shows what they are.
    const sent: Email[] = [];
    const collect = defineTask(sendEmail, async (email: Email) => {
      sent.push(email);
      return { to: email.to, messageId: "", attempts: 1 };
    });
    const worker = createWorker({ broker: url, backend: url, tasks: [collect] });
    await worker.start();
    while (sent.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await worker.stop();
    const byRecipient = Object.fromEntries(sent.map((email) => [email.to, email]));
    expect(byRecipient["ana@example.com"]).toMatchObject({
      subject: "Thank you for your feedback",
    });
    expect(byRecipient["ana@example.com"]!.text).toContain("> Search is slow.");
    expect(byRecipient["support@example.com"]).toMatchObject({
      subject: "New feedback from Ana",
      replyTo: "ana@example.com",
    });
  });

  it("shows the form again with what was wrong, escaped, and saves nothing", async () => {
    const response = await app.inject({
      method: "POST",
      url: "/feedback",
      ...form({ name: "<script>x</script>", email: "not an address", message: "" }),
    });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain("Please give an email address");
    expect(response.body).toContain("Please write your feedback");
    expect(response.body).toContain('value="&lt;script&gt;x&lt;/script&gt;"');
    expect(response.body).not.toContain("<script>x");
    expect(await store.list()).toEqual([]);
  });

  it("thanks the author by name", async () => {
    const feedback = await store.add({ name: "Zoë", email: "zoe@example.com", message: "Nice." });
    const response = await app.inject({ url: `/thanks?id=${feedback.id}` });
    expect(response.statusCode).toBe(200);
    expect(response.body).toContain("Thank you, Zoë!");
    expect(response.body).toContain("zoe@example.com");
  });
});

describe("parseFeedback", () => {
  it("rejects a name on two lines (it goes into a mail header)", () => {
    const parsed = parseFeedback({
      name: "Ana\r\nBcc: x@example.com",
      email: "a@example.com",
      message: "m",
    });
    expect(parsed.ok).toBe(false);
  });
});

describe("configuration", () => {
  it("defaults to one SQLite file for broker and results", () => {
    const config = loadConfig({});
    expect(config.broker).toBe("sqlite:///.data/web-feedback.db");
    expect(config.backend).toBe(config.broker);
    expect(config.port).toBe(3000);
  });

  it("switches to Redis or RabbitMQ with one URL", () => {
    const redis = loadConfig({ CELERY_BROKER_URL: "redis://127.0.0.1:6379/0" });
    expect(redis.backend).toBe("redis://127.0.0.1:6379/0");
    const amqp = loadConfig({ CELERY_BROKER_URL: "amqp://guest:guest@127.0.0.1:5672//" });
    expect(amqp.backend).toBe("sqlite:///.data/web-feedback.db");
    expect(defaultBackend("amqp://x", "sqlite:///y.db")).toBe("sqlite:///y.db");
    const explicit = loadConfig({ CELERY_BROKER_URL: "amqp://x", CELERY_RESULT_BACKEND: "rpc://" });
    expect(explicit.backend).toBe("rpc://");
  });
});
