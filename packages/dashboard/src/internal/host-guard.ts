import type { IncomingMessage } from "node:http";
import { isLoopback } from "./auth.ts";

/**
 * Against DNS rebinding: a page on another site whose name the attacker points at 127.0.0.1
 * becomes same-origin with a loopback dashboard, so a loopback dashboard answers only requests
 * whose Host names it (its bound host, localhost, 127.0.0.1 or [::1], with its port). And every
 * POST that comes from a browser (it sends Origin) must come from the page of that same host.
 * A dashboard bound beyond loopback requires credentials, which a foreign origin does not have;
 * its Host is not checked (the machine has names the dashboard cannot know).
 * Returns why the request is refused, or undefined when it may go on.
 */
export function refusedHost(
  request: IncomingMessage,
  bound: string,
  port: number,
): string | undefined {
  const host = (request.headers.host ?? "").toLowerCase();
  if (isLoopback(bound)) {
    const names = ["localhost", "127.0.0.1", "[::1]", bound.includes(":") ? `[${bound}]` : bound];
    const ok = names.some((name) => host === `${name}:${port}` || (port === 80 && host === name));
    if (!ok)
      return `the dashboard answers only as http://127.0.0.1:${port}/ or http://localhost:${port}/, not as Host ${JSON.stringify(host)}: open it by one of those addresses`;
  }
  const origin = request.headers.origin;
  if (request.method === "POST" && origin !== undefined && origin !== `http://${host}`)
    return `actions are taken only from the dashboard's own page (http://${host}), not from ${origin}`;
  return undefined;
}
