import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { admitted, TOKEN_COOKIE, type DashboardAuth } from "./auth.ts";
import { refusedHost } from "./host-guard.ts";
import { json } from "./http-kit.ts";
import { LiveStream } from "./live-stream.ts";
import { overview } from "./overview.ts";
import { createRouter, type RouteDeps } from "./routes.ts";

export interface HttpServer {
  readonly url: string;
  close(): Promise<void>;
}

interface ServerDeps extends RouteDeps {
  host: string;
  port: number;
  auth: DashboardAuth | undefined;
}

/**
 * Answers 401 without the credentials; with a token in the query, sets the cookie and redirects
 * to the same page without it. True when the request was answered here.
 */
function gate(
  auth: DashboardAuth | undefined,
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
): boolean {
  const token = url.searchParams.get("token");
  if (!admitted(request, auth, token)) {
    const basic = auth && !("token" in auth);
    response.writeHead(401, {
      "content-type": "text/plain",
      ...(basic && { "www-authenticate": 'Basic realm="celery-ts dashboard"' }),
    });
    response.end("celery-ts dashboard: sign in (a token as ?token=..., or basic auth)\n");
    return true;
  }
  if (token !== null && auth && "token" in auth) {
    response.writeHead(303, {
      location: url.pathname,
      "set-cookie": `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
    });
    response.end();
    return true;
  }
  return false;
}

/** Serves the page, its assets, the JSON API, the live stream and the actions. */
export async function startHttpServer(deps: ServerDeps): Promise<HttpServer> {
  const live = new LiveStream(() => overview(deps.state, deps.queues));
  const route = createRouter(deps, live);
  let port = deps.port;
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const refused = refusedHost(request, deps.host, port);
    if (refused !== undefined) return json(response, 403, { error: refused });
    const url = new URL(request.url ?? "/", "http://dashboard");
    if (!gate(deps.auth, request, response, url)) await route(request, response, url);
  };
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      deps.logger.error("dashboard: request failed", { url: request.url, error: String(error) });
      if (!response.headersSent) json(response, 500, { error: "internal error" });
      else response.end();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(deps.port, deps.host, () => resolve());
    });
  } catch (error) {
    live.close();
    throw error;
  }
  const address = server.address();
  if (typeof address === "object" && address) port = address.port;
  const shown = deps.host.includes(":") ? `[${deps.host}]` : deps.host;
  return {
    url: `http://${shown}:${port}/`,
    async close() {
      live.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
