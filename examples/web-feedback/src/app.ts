// The web app: a feedback form whose submission is saved, hands two emails to the worker, and
// redirects at once. The request never waits for an email.
import formbody from "@fastify/formbody";
import type { Client } from "@celery-ts/client";
import Fastify, { type FastifyInstance } from "fastify";
import { supportNotice, thankYouEmail } from "./emails.ts";
import type { FeedbackInput, FeedbackStore } from "./feedback-store.ts";
import { errorPage, feedbackFormPage, thanksPage } from "./pages.ts";
import { sendEmail } from "./tasks.ts";

export interface RequestLog {
  method: string;
  url: string;
  statusCode: number;
  /** How long the request took, in milliseconds. */
  ms: number;
}

export interface AppOptions {
  client: Client;
  store: FeedbackStore;
  supportAddress: string;
  /** Called after each response, e.g. to log it. */
  onResponse?: (entry: RequestLog) => void;
}

const EMAIL = /^[^\s@<>()",;]+@[^\s@<>()",;]+\.[^\s@<>()",;]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The form's fields, trimmed and checked; errors are for people. */
export function parseFeedback(
  body: unknown,
):
  | { ok: true; value: FeedbackInput }
  | { ok: false; values: Partial<FeedbackInput>; errors: string[] } {
  const fields = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const text = (key: string): string => (typeof fields[key] === "string" ? fields[key].trim() : "");
  const value = { name: text("name"), email: text("email"), message: text("message") };
  const errors: string[] = [];
  if (value.name === "" || value.name.length > 100 || CONTROL.test(value.name))
    errors.push("Please give your name (up to 100 characters, on one line).");
  if (!EMAIL.test(value.email) || value.email.length > 200)
    errors.push("Please give an email address we can write to, like ana@example.com.");
  if (value.message === "" || value.message.length > 5000)
    errors.push("Please write your feedback (up to 5000 characters).");
  return errors.length === 0 ? { ok: true, value } : { ok: false, values: value, errors };
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { client, store, supportAddress, onResponse } = options;
  const emails = client.task(sendEmail);
  const app = Fastify();
  await app.register(formbody);

  if (onResponse) {
    app.addHook("onResponse", async (request, reply) => {
      onResponse({
        method: request.method,
        url: request.url,
        statusCode: reply.statusCode,
        ms: reply.elapsedTime,
      });
    });
  }

  app.get("/", async (_request, reply) => reply.type("text/html").send(feedbackFormPage()));

  app.post("/feedback", async (request, reply) => {
    const parsed = parseFeedback(request.body);
    if (!parsed.ok) {
      return reply.code(400).type("text/html").send(feedbackFormPage(parsed.values, parsed.errors));
    }
    const feedback = await store.add(parsed.value);
    // Hand both emails to the broker (milliseconds), not to the mail server (seconds, or minutes
    // when it is busy): the worker sends them, and retries them, after this response has gone.
    await Promise.all([
      emails.delay(thankYouEmail(feedback)),
      emails.delay(supportNotice(feedback, supportAddress)),
    ]);
    return reply.redirect(`/thanks?id=${encodeURIComponent(feedback.id)}`, 303);
  });

  app.get<{ Querystring: { id?: string } }>("/thanks", async (request, reply) => {
    const { id } = request.query;
    const feedback = typeof id === "string" ? await store.get(id) : undefined;
    return reply.type("text/html").send(thanksPage(feedback));
  });

  app.setNotFoundHandler(async (_request, reply) =>
    reply.code(404).type("text/html").send(errorPage("Not found", "There is no such page.")),
  );

  app.setErrorHandler(async (error, request, reply) => {
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    const message = error instanceof Error ? error.message : String(error);
    if (status >= 500) request.log.error(error);
    return reply
      .code(status)
      .type("text/html")
      .send(
        errorPage(
          "Something went wrong",
          status >= 500 ? "That did not work just now. Please try again." : message,
        ),
      );
  });

  return app;
}
