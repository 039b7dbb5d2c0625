import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { deadLetterMethods, type Logger, type Transport } from "@celery-ts/core";
import type { FleetState } from "../fleet-state.ts";
import { ActionError, isQueueName, type Action } from "./action-kit.ts";
import { deadLetterRow, type DeadLetterRow } from "./dead-letter-view.ts";
import { ACTION_HEADER, json, readBody } from "./http-kit.ts";
import type { LiveStream } from "./live-stream.ts";
import { overview } from "./overview.ts";
import { renderPage } from "./page.ts";
import { DEAD_LETTER_LIMIT, type QueueWatch } from "./queue-watch.ts";

/** What the routes read and act on. */
export interface RouteDeps {
  state: FleetState;
  queues: QueueWatch;
  transport: Transport;
  actions: Record<string, Action>;
  logger: Logger;
}

type Handler = (response: ServerResponse, url: URL) => Promise<void> | void;

const ASSETS: Record<string, string> = { "app.js": "text/javascript", "style.css": "text/css" };
/** assets/ beside src/ (or dist/, where the build bundles this file one folder higher). */
const ASSET_DIR = [
  join(import.meta.dirname, "../../assets"),
  join(import.meta.dirname, "../assets"),
].find((dir) => existsSync(join(dir, "app.js")))!;

const DEAD_LETTERS_PATH = /^\/api\/queues\/([^/]+)\/dead-letters$/;

/** A path segment decoded; a malformed escape stays as it is (and matches no task or queue). */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** GET /api/tasks/<id>: the task with its children. */
function taskPage(deps: RouteDeps, response: ServerResponse, id: string): void {
  const task = deps.state.tasks.get(id);
  if (!task) return json(response, 404, { error: `task ${id} is not in the dashboard's window` });
  const children = deps.state
    .children(id)
    .map((c) => ({ uuid: c.uuid, name: c.name, state: c.state }));
  json(response, 200, { ...task, children });
}

/** GET /api/queues/<queue>/dead-letters: the oldest 1000 (or ?limit=), without their bodies. */
async function deadLetters(
  deps: RouteDeps,
  response: ServerResponse,
  queue: string,
  url: URL,
): Promise<void> {
  if (!isQueueName(queue))
    return json(response, 400, { error: `not a queue name: ${JSON.stringify(queue)}` });
  const api = deadLetterMethods(deps.transport);
  if (!api)
    return json(response, 404, {
      error: `the ${deps.transport.name} broker keeps no dead letters here`,
    });
  const asked = Number(url.searchParams.get("limit") ?? DEAD_LETTER_LIMIT);
  const limit = Math.min(DEAD_LETTER_LIMIT, Math.max(1, Math.floor(asked) || DEAD_LETTER_LIMIT));
  let letters: DeadLetterRow[];
  try {
    letters = (await api.list(queue, { limit })).map(deadLetterRow);
  } catch (error) {
    deps.logger.warn("dashboard: listing dead letters failed", { queue, error: String(error) });
    return json(response, 503, {
      error: `the ${deps.transport.name} broker did not list the dead letters of ${queue}: ${(error as Error).message}. Check that the broker is up and reachable, then reload.`,
    });
  }
  if (limit === DEAD_LETTER_LIMIT) deps.queues.setDeadLetters(queue, letters.length);
  json(response, 200, { queue, limit, letters });
}

/** The GET routes, by exact path. */
function getRoutes(deps: RouteDeps): Record<string, Handler> {
  return {
    "/": (response) => {
      response.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
      });
      response.end(renderPage());
    },
    "/api/overview": (response) => json(response, 200, overview(deps.state, deps.queues)),
    "/api/tasks": (response, url) => {
      const limit = Math.min(1000, Number(url.searchParams.get("limit") ?? 200) || 200);
      const q = url.searchParams.get("q") ?? "";
      const state = url.searchParams.get("state") ?? "";
      json(response, 200, deps.state.search({ q, state, limit }));
    },
  };
}

/** Runs POST /api/actions/<name> (only with the page's header) and answers its result. */
async function runAction(
  deps: RouteDeps,
  request: IncomingMessage,
  response: ServerResponse,
  name: string,
): Promise<void> {
  if (request.headers[ACTION_HEADER] !== "1")
    return json(response, 403, {
      error: `actions need the ${ACTION_HEADER} header (sent by the page)`,
    });
  const run = Object.hasOwn(deps.actions, name) ? deps.actions[name] : undefined;
  if (!run) return json(response, 404, { error: `no action "${name}"` });
  try {
    const result = await run(await readBody(request));
    deps.logger.info("dashboard action", { action: name, message: result.message });
    json(response, 200, result);
  } catch (error) {
    const status = error instanceof ActionError ? 400 : 500;
    json(response, status, { ok: false, message: (error as Error).message });
  }
}

/** Routes an admitted request: the page, its assets, the JSON API, the live stream, the actions. */
export function createRouter(
  deps: RouteDeps,
  live: LiveStream,
): (request: IncomingMessage, response: ServerResponse, url: URL) => Promise<void> {
  const exact = getRoutes(deps);
  return async (request, response, url) => {
    const path = url.pathname;
    if (request.method === "POST" && path.startsWith("/api/actions/"))
      return runAction(deps, request, response, path.slice(13));
    if (request.method !== "GET") return json(response, 405, { error: "method not allowed" });
    if (Object.hasOwn(exact, path)) return exact[path]!(response, url);
    const asset = path.startsWith("/assets/") ? path.slice(8) : undefined;
    if (asset !== undefined && ASSETS[asset]) {
      response.writeHead(200, { "content-type": ASSETS[asset], "cache-control": "no-cache" });
      response.end(await readFile(join(ASSET_DIR, asset)));
      return;
    }
    if (path.startsWith("/api/tasks/")) return taskPage(deps, response, decoded(path.slice(11)));
    const dead = DEAD_LETTERS_PATH.exec(path);
    if (dead) return deadLetters(deps, response, decoded(dead[1]!), url);
    if (path === "/api/stream") return live.open(response);
    json(response, 404, { error: "not found" });
  };
}
