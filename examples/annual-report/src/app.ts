// The web app: POST /reports starts the report (a chord of twelve month tasks and the task that
// assembles them) and answers with its id at once; the page then polls GET /status/:id; GET
// /reports/:id serves the finished report.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Client } from "@celery-ts/client";
import Fastify, { type FastifyInstance } from "fastify";
import { LEDGER } from "./ledger.ts";
import { indexPage, notFoundPage } from "./pages.ts";
import { startReport } from "./parallel-report.ts";
import { reportStatus } from "./status.ts";

export interface RequestLog {
  method: string;
  url: string;
  statusCode: number;
  /** How long the request took, in milliseconds. */
  ms: number;
}

export interface AppOptions {
  client: Client;
  /** Where the worker writes the reports (REPORTS_DIR). */
  reportsDir: string;
  /** How often the page polls. @default 2000 */
  pollIntervalMs?: number;
  /** Called after each response, e.g. to log it. */
  onResponse?: (entry: RequestLog) => void;
}

/** Task ids are UUIDs; checking them keeps them safe to use as file names. */
const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The years the page offers: one before the ledger starts, to the year it is open in. */
export const YEARS: readonly number[] = Array.from(
  { length: LEDGER.last.year - LEDGER.first.year + 2 },
  (_, i) => LEDGER.first.year - 1 + i,
);

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { client, reportsDir, onResponse } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const app = Fastify();

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

  app.get("/", async (_request, reply) =>
    reply.type("text/html").send(indexPage(YEARS, LEDGER.last.year - 1, pollIntervalMs)),
  );

  app.post<{ Body: { year: number } }>(
    "/reports",
    {
      schema: {
        body: {
          type: "object",
          required: ["year"],
          properties: { year: { type: "integer", minimum: 1900, maximum: 2100 } },
        },
      },
    },
    async (request, reply) => {
      // Sending the chord takes milliseconds; the report, seconds to tens of seconds, on the
      // workers: twelve month tasks in parallel, then the one that assembles the report.
      const result = await startReport(client, request.body.year);
      return reply.code(202).send({ id: result.id, statusUrl: `/status/${result.id}` });
    },
  );

  app.get<{ Params: { id: string } }>("/status/:id", async (request, reply) => {
    const { id } = request.params;
    if (!TASK_ID.test(id)) return reply.code(400).send({ error: "not a task id" });
    return reportStatus(client, id);
  });

  app.get<{ Params: { id: string } }>("/reports/:id", async (request, reply) => {
    const { id } = request.params;
    if (!TASK_ID.test(id)) {
      return reply.code(404).type("text/html").send(notFoundPage("There is no such report."));
    }
    try {
      const html = await readFile(join(reportsDir, `${id.toLowerCase()}.html`), "utf8");
      return reply.type("text/html").send(html);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      return reply
        .code(404)
        .type("text/html")
        .send(notFoundPage("That report does not exist, or is not finished yet."));
    }
  });

  return app;
}
