import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** How the dashboard admits a request: a token, or basic auth credentials. */
export type DashboardAuth = { token: string } | { username: string; password: string };

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** True for an address only this machine can reach. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || host.startsWith("127.");
}

/** Refuses to listen on an address other machines can reach without credentials. */
export function checkBinding(host: string, auth: DashboardAuth | undefined): void {
  if (isLoopback(host)) return;
  if (auth === undefined) {
    throw new Error(
      `the dashboard would listen on ${host}, which other machines can reach: give it a token (--token, or CELERY_TS_DASHBOARD_TOKEN) or basic auth (--basic-auth user:password), or listen on 127.0.0.1`,
    );
  }
  const secret = "token" in auth ? auth.token : auth.password;
  if (secret.length < 8)
    throw new Error("the dashboard's token or password must have 8 characters or more");
}

const same = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export const TOKEN_COOKIE = "celery_ts_dashboard";

/** True when the request carries the credentials (or none are configured). */
export function admitted(
  request: IncomingMessage,
  auth: DashboardAuth | undefined,
  queryToken: string | null,
): boolean {
  if (auth === undefined) return true;
  const header = request.headers.authorization ?? "";
  if ("token" in auth) {
    if (header.startsWith("Bearer ") && same(header.slice(7), auth.token)) return true;
    if (queryToken !== null && same(queryToken, auth.token)) return true;
    const cookie = (request.headers.cookie ?? "")
      .split(";")
      .map((part) => part.trim().split("="))
      .find(([name]) => name === TOKEN_COOKIE)?.[1];
    return cookie !== undefined && same(decodeURIComponent(cookie), auth.token);
  }
  if (!header.startsWith("Basic ")) return false;
  const decoded = Buffer.from(header.slice(6), "base64").toString();
  return same(decoded, `${auth.username}:${auth.password}`);
}
