// End to end, in a real browser: fill the form, submit, get the thank-you page at once; the two
// emails reach the local SMTP server later, through a real worker process, after the server has
// refused them once.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "@celery-ts/client";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildApp, type RequestLog } from "../src/app.ts";
import { createFeedbackStore } from "../src/feedback-store.ts";
import { startMailServer } from "../src/mail-server.ts";
import { startWorkerProcess } from "@celery-ts/worker";
import { launchChromium, screenshotPath, sqliteUrl, tempDir } from "./support.ts";

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

it("redirects at once, and the mail arrives later, after retries", async () => {
  const dir = await tempDir("web-feedback-e2e");
  const url = sqliteUrl(dir.path);
  // The mail server refuses the first two deliveries (451): both emails need a retry.
  const mail = await startMailServer({ refuseFirst: 2 });
  const worker = startWorkerProcess({
    app: join(import.meta.dirname, "../src/tasks.ts"),
    broker: url,
    backend: url,
    logFile: join(dir.path, "worker.log"),
    env: { SMTP_PORT: String(mail.port) },
  });
  const client = createClient({ broker: url, backend: url });
  const requests: (RequestLog & { at: number })[] = [];
  const app = await buildApp({
    client,
    store: createFeedbackStore(join(dir.path, "feedback.jsonl")),
    supportAddress: "support@example.com",
    onResponse: (entry) => requests.push({ ...entry, at: Date.now() }),
  });
  const base = await app.listen({ host: "127.0.0.1", port: 0 });
  const page = await browser.newPage();
  let workerCode: number | null;
  try {
    await page.goto(`${base}/`);
    await page.fill("#name", "Ana Example");
    await page.fill("#email", "ana@example.com");
    await page.fill("#message", "The export button is hard to find. (e2e-7f3a)");
    await page.screenshot({ path: screenshotPath("web-feedback-form"), fullPage: true });
    await Promise.all([page.waitForURL(/\/thanks\?id=/), page.click("button[type=submit]")]);

    // The redirect came back before any mail arrived: the request did not wait for the emails.
    const mailsAtRedirect = mail.received.length;
    const post = requests.find((r) => r.method === "POST" && r.url === "/feedback");
    expect(post?.statusCode).toBe(303);
    expect(post!.ms).toBeLessThan(2_000);
    expect(mailsAtRedirect).toBe(0);
    expect(await page.textContent("h1")).toBe("Thank you, Ana Example!");
    expect(await page.textContent("blockquote")).toContain("(e2e-7f3a)");

    const mails = await mail.waitForMail(2, 60_000);
    for (const received of mails) expect(received.receivedAt).toBeGreaterThan(post!.at);
    const thankYou = mails.find((m) => m.to[0] === "ana@example.com");
    const notice = mails.find((m) => m.to[0] === "support@example.com");
    expect(thankYou).toMatchObject({ subject: "Thank you for your feedback" });
    expect(thankYou!.text).toContain("> The export button is hard to find. (e2e-7f3a)");
    expect(notice).toMatchObject({ subject: "New feedback from Ana Example" });
    expect(notice!.headers["reply-to"]).toBe("ana@example.com");

    // Two refusals, then each email went through: 4 attempts for 2 emails, none of them at the
    // first try's moment (the redirect), and at least one of them refused, then accepted.
    expect(mail.refused).toHaveLength(2);
    const attempts = mails.map((m) => Number(m.headers["x-delivery-attempt"]));
    expect(attempts.reduce((a, b) => a + b, 0)).toBe(4);
    expect(Math.max(...attempts)).toBeGreaterThan(1);
    // The worker stored each result; the task id travels in the mail's X-Task-ID header.
    for (const received of mails) {
      const result = client.asyncResult<{ attempts: number }>(received.headers["x-task-id"]!);
      expect(await result.get({ timeout: 10 })).toMatchObject({
        attempts: Number(received.headers["x-delivery-attempt"]),
      });
    }

    const saved = (await readFile(join(dir.path, "feedback.jsonl"), "utf8")).trim().split("\n");
    expect(saved).toHaveLength(1);
    expect(JSON.parse(saved[0]!)).toMatchObject({ name: "Ana Example", email: "ana@example.com" });

    await page.screenshot({ path: screenshotPath("web-feedback-thanks"), fullPage: true });
  } finally {
    await page.close();
    await app.close();
    await client.close();
    workerCode = await worker.stop();
    await mail.close();
    await dir.remove();
  }
  expect(workerCode).toBe(0);
}, 120_000);
