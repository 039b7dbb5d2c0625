import type { IncomingMessage, ServerResponse } from "node:http";
import { ActionError } from "./action-kit.ts";

/** Browsers send this header only from the page's own scripts: a cross-site form cannot. */
export const ACTION_HEADER = "x-celery-ts-dashboard";
const MAX_BODY = 64 * 1024;

export function json(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  response.end(JSON.stringify(value));
}

/** The request's body as a JSON object (up to 64 KiB), or an ActionError. */
export async function readBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ActionError("request body too large");
    chunks.push(chunk);
  }
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString() || "{}");
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new ActionError("the body must be a JSON object");
}
