// The web app: hands work to the Python Celery worker and answers at once with the task's id;
// GET /tasks/:id reads the result the Python worker stored. It never runs a task itself.
import type { Client } from "@celery-ts/client";
import { TaskState, failureFromMeta, isCeleryTsError, type ResultMeta } from "@celery-ts/core";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { indexPage } from "./page.ts";
import { thumbnailSize, wordCount } from "./python-tasks.ts";

export interface RequestLog {
  method: string;
  url: string;
  statusCode: number;
  /** How long the request took, in milliseconds. */
  ms: number;
}

export interface AppOptions {
  client: Client;
  /** Called after each response, e.g. to log it. */
  onResponse?: (entry: RequestLog) => void;
}

/** What GET /tasks/:id answers. */
export interface TaskStatus {
  id: string;
  /** PENDING (queued, or unknown), STARTED, RETRY, SUCCESS, FAILURE, REVOKED. */
  state: string;
  /** SUCCESS: what the task returned. */
  result?: unknown;
  /** FAILURE, REVOKED: the exception, as the worker stored it (Python's `type(e).__name__`...). */
  error?: { type: string; message: string; module: string | null };
}

/** The longest GET /tasks/:id?wait=<seconds> may wait for the task to finish. */
export const MAX_WAIT_SECONDS = 30;
/** How long a form's redirect to GET /tasks/:id waits, so a person sees the result. */
const FORM_WAIT_SECONDS = 10;
const MAX_TEXT_LENGTH = 1_000_000;

export function describeStatus(id: string, meta: ResultMeta | undefined): TaskStatus {
  if (meta === undefined) return { id, state: TaskState.PENDING };
  switch (meta.status) {
    case TaskState.SUCCESS:
      return { id, state: meta.status, result: meta.result };
    case TaskState.FAILURE:
    case TaskState.REVOKED: {
      const failure = failureFromMeta(meta);
      return {
        id,
        state: meta.status,
        error: { type: failure.excType, message: failure.excMessage, module: failure.excModule },
      };
    }
    default:
      return { id, state: meta.status };
  }
}

class BadRequest extends Error {
  readonly statusCode = 400;
}

const fields = (body: unknown): Record<string, unknown> =>
  typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};

/** A whole number from JSON (7) or from a form ("7"). Its range is the Python task's business. */
function wholeNumber(value: unknown, name: string, fallback?: number): number {
  if ((value === undefined || value === "") && fallback !== undefined) return fallback;
  const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof number !== "number" || !Number.isSafeInteger(number)) {
    throw new BadRequest(`${name} must be a whole number`);
  }
  return number;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { client, onResponse } = options;
  const app = Fastify();
  // HTML forms post application/x-www-form-urlencoded; JSON clients post JSON (Fastify's own).
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: 2 * MAX_TEXT_LENGTH },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );

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

  /** 202 with the task's id for JSON clients; a form gets a 303 to the result, which waits. */
  const accepted = (request: FastifyRequest, reply: FastifyReply, task: string, id: string) => {
    const status = `/tasks/${encodeURIComponent(id)}`;
    if (request.headers["content-type"]?.startsWith("application/x-www-form-urlencoded")) {
      return reply.redirect(`${status}?wait=${FORM_WAIT_SECONDS}`, 303);
    }
    return reply.code(202).send({ id, task, status });
  };

  app.get("/", async (_request, reply) => reply.type("text/html").send(indexPage()));

  app.post("/word-count", async (request, reply) => {
    const { text } = fields(request.body);
    if (typeof text !== "string" || text.trim() === "" || text.length > MAX_TEXT_LENGTH) {
      throw new BadRequest(
        `text must be a non-empty string of up to ${MAX_TEXT_LENGTH} characters`,
      );
    }
    // Typed by the declaration: delay() takes one string, and get() would resolve with a number.
    const result = await client.task(wordCount).delay(text);
    return accepted(request, reply, wordCount.name, result.id);
  });

  app.post("/thumbnail-size", async (request, reply) => {
    const body = fields(request.body);
    const width = wholeNumber(body.width, "width");
    const height = wholeNumber(body.height, "height");
    const maxSide = wholeNumber(body.max_side, "max_side", 256);
    const result = await client.task(thumbnailSize).delay(width, height, maxSide);
    return accepted(request, reply, thumbnailSize.name, result.id);
  });

  app.get<{ Params: { id: string }; Querystring: { wait?: string } }>(
    "/tasks/:id",
    async (request) => {
      const { id } = request.params;
      const wait = request.query.wait === undefined ? 0 : Number(request.query.wait);
      if (!(wait >= 0 && wait <= MAX_WAIT_SECONDS)) {
        throw new BadRequest(`wait must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}`);
      }
      // Any client can read any task's result by id: this one was sent by this app, run by Python.
      const result = client.asyncResult(id);
      if (wait > 0) {
        try {
          await result.get({ timeout: wait, propagate: false });
        } catch (error) {
          if (!isCeleryTsError(error, "TIMEOUT")) throw error; // not finished yet: say so below
        }
      }
      return describeStatus(id, await result.info());
    },
  );

  app.setErrorHandler(async (error, request, reply) => {
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) request.log.error(error);
    const message = status >= 500 ? "internal error" : (error as Error).message;
    return reply.code(status).send({ error: message });
  });

  return app;
}
