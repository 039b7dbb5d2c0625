import { takeDeliveryLimitParameters, type DeliveryLimitOptions } from "@celery-ts/core/driver";
import type { RedisOptions } from "ioredis";
import { configError, PKG } from "./errors.ts";

/** What a URL says: ioredis connection options, plus the transport and backend options it sets. */
export interface ParsedRedisUrl {
  redis: RedisOptions;
  /** The server, for messages: `127.0.0.1:6379/0`, or `sentinel master "mymaster" (db 0)`. */
  target: string;
  /** Seconds. */
  visibilityTimeout?: number;
  keyPrefix?: string;
  /** Seconds (`?result_expires=`); 0 keeps results forever. */
  expires?: number;
  /** `?reconnect_attempts=`: failed reconnect attempts in a row before giving up. */
  reconnectAttempts?: number;
  /** `?dead_letters=`, `?dead_letter_max_*=`, `?max_message_bytes=` (broker). */
  limits?: DeliveryLimitOptions;
}

const FORMS =
  "use redis://[[username]:password@]host[:port][/db], rediss://... for TLS, or " +
  "redis+sentinel://[[username]:password@]host[:port][,host[:port]...][/db]?master_name=name " +
  "(Celery's sentinel://host:port;sentinel://host:port/db?master_name=name is read too)";

/** Query parameters, named as in Celery and redis-py where they exist there. */
const PARAMETERS: Record<string, string> = {
  visibility_timeout: "seconds a delivered message stays reserved (broker)",
  global_keyprefix: "a prefix for every key, as kombu's global_keyprefix",
  result_expires: "seconds a result is kept (backend); 0 keeps results forever",
  master_name: "the Sentinel master's name (Sentinel URLs)",
  sentinel_password: "the password of the Sentinels themselves (Sentinel URLs)",
  ssl_cert_reqs: "required (default), optional or none (rediss URLs)",
  socket_connect_timeout: "seconds to wait for a connection",
  socket_timeout: "seconds to wait for a command's reply",
  reconnect_attempts:
    "failed reconnect attempts in a row before giving up (a worker then stops); default: no limit",
};

function fail(url: string, reason: string): never {
  throw configError(`invalid Redis URL ${redact(url)}: ${reason}; ${FORMS}`);
}

/** The URL without its password, for messages and logs. */
export function redact(url: string): string {
  return JSON.stringify(url.replace(/(\/\/[^:@/]*:)[^@/]*@/g, "$1***@"));
}

function decode(url: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return fail(url, `cannot percent-decode ${JSON.stringify(text)}`);
  }
}

function seconds(url: string, name: string, value: string, allowZero = false): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || (n === 0 && !allowZero)) {
    return fail(
      url,
      `${name} must be a ${allowZero ? "non-negative" : "positive"} number of seconds`,
    );
  }
  return Math.round(n * 1000);
}

interface Authority {
  username?: string;
  password?: string;
  hosts: { host: string; port: number }[];
  db: number;
  query: URLSearchParams;
}

/** `[userinfo@]host[:port][,host[:port]...][/db][?query]`, after the scheme. */
function parseAuthority(url: string, rest: string, defaultPort: number): Authority {
  const match = /^(?:([^@/?#]*)@)?([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?(?:#.*)?$/.exec(rest);
  if (!match) return fail(url, "it does not have the form scheme://host:port/db");
  const [, userinfo, hostlist = "", path = "", search = ""] = match;
  const authority: Authority = { hosts: [], db: 0, query: new URLSearchParams(search) };
  if (userinfo !== undefined && userinfo !== "") {
    // As redis-py: "user:pass" is an ACL user and password, ":pass" a password alone, "user" a user.
    const colon = userinfo.indexOf(":");
    const username = decode(url, colon === -1 ? userinfo : userinfo.slice(0, colon));
    if (username !== "") authority.username = username;
    if (colon !== -1) authority.password = decode(url, userinfo.slice(colon + 1));
  }
  for (const part of hostlist === "" ? ["127.0.0.1"] : hostlist.split(",")) {
    const hostMatch = /^(\[[^\]]+\]|[^:[\]]*)(?::(\d*))?$/.exec(part);
    if (!hostMatch) return fail(url, `cannot read the host ${JSON.stringify(part)}`);
    const host = (hostMatch[1] ?? "").replace(/^\[(.*)\]$/, "$1") || "127.0.0.1";
    const port = hostMatch[2] ? Number(hostMatch[2]) : defaultPort;
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      return fail(url, `the port of ${JSON.stringify(part)} is not a port number`);
    }
    authority.hosts.push({ host, port });
  }
  const db = path.replace(/^\/+|\/+$/g, "");
  if (db !== "") {
    if (!/^\d+$/.test(db)) return fail(url, `the path must be a database number, got "/${db}"`);
    authority.db = Number(db);
  }
  return authority;
}

function formatHost({ host, port }: { host: string; port: number }): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * Reads the URLs Celery users know: `redis://`, `rediss://` (TLS), with an ACL username, a
 * password and a database number, and Sentinel (`redis+sentinel://`, or Celery's `sentinel://`
 * list). Pure: no I/O. Throws a `CONFIG` error that shows the accepted forms.
 */
export function parseRedisUrl(url: string): ParsedRedisUrl {
  const { url: rest, options } = takeDeliveryLimitParameters(PKG, url);
  const parsed = parseWithoutLimits(rest);
  return Object.keys(options).length === 0 ? parsed : { ...parsed, limits: options };
}

function parseWithoutLimits(url: string): ParsedRedisUrl {
  const schemeMatch = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/is.exec(url.trim());
  if (!schemeMatch) return fail(url, "it has no scheme");
  const scheme = (schemeMatch[1] ?? "").toLowerCase();
  const rest = schemeMatch[2] ?? "";
  if (scheme === "sentinel") {
    // Celery's form: "sentinel://h1:26379/0;sentinel://h2:26380/0", credentials and database
    // from the first.
    const chunks = url
      .trim()
      .split(";")
      .filter((chunk) => chunk.trim() !== "");
    const parts = chunks.map((chunk) => {
      const m = /^sentinel:\/\/(.*)$/is.exec(chunk.trim());
      if (!m)
        return fail(url, `each ";"-separated part must be a sentinel:// URL, got ${redact(chunk)}`);
      return parseAuthority(url, m[1] ?? "", 26_379);
    });
    const [first] = parts;
    if (!first) return fail(url, "it names no Sentinel");
    // Parameters may follow any part (usually the last).
    const query = new URLSearchParams(parts.flatMap((part) => [...part.query]));
    return sentinelOptions(url, { ...first, query, hosts: parts.flatMap((part) => part.hosts) });
  }
  if (scheme === "redis+sentinel") return sentinelOptions(url, parseAuthority(url, rest, 26_379));
  if (scheme !== "redis" && scheme !== "rediss") {
    return fail(url, `the scheme "${scheme}://" is not a Redis scheme`);
  }
  const authority = parseAuthority(url, rest, 6379);
  const [server, ...others] = authority.hosts;
  if (!server || others.length > 0) {
    return fail(url, "a redis:// URL names one server (several hosts are for redis+sentinel://)");
  }
  const parsed: ParsedRedisUrl = {
    redis: {
      host: server.host,
      port: server.port,
      db: authority.db,
      ...credentials(authority),
    },
    target: `${formatHost(server)}/${authority.db}`,
  };
  applyQuery(url, scheme, authority.query, parsed);
  return parsed;
}

function credentials(authority: Authority): Pick<RedisOptions, "username" | "password"> {
  return {
    ...(authority.username !== undefined && { username: authority.username }),
    ...(authority.password !== undefined && { password: authority.password }),
  };
}

function sentinelOptions(url: string, authority: Authority): ParsedRedisUrl {
  const name = authority.query.get("master_name");
  if (!name) return fail(url, "a Sentinel URL needs ?master_name=<the master's name>");
  const parsed: ParsedRedisUrl = {
    redis: {
      sentinels: authority.hosts,
      name,
      db: authority.db,
      ...credentials(authority),
    },
    target: `Sentinel master "${name}" (db ${authority.db}) via ${authority.hosts.map(formatHost).join(",")}`,
  };
  applyQuery(url, "sentinel", authority.query, parsed);
  return parsed;
}

function applyQuery(
  url: string,
  scheme: string,
  query: URLSearchParams,
  parsed: ParsedRedisUrl,
): void {
  for (const [name, value] of query) {
    switch (name) {
      case "visibility_timeout":
        parsed.visibilityTimeout = seconds(url, name, value) / 1000;
        break;
      case "global_keyprefix":
        parsed.keyPrefix = value;
        break;
      case "result_expires":
        parsed.expires = seconds(url, name, value, true) / 1000;
        break;
      case "master_name":
        if (scheme !== "sentinel") return fail(url, "master_name is for Sentinel URLs");
        break;
      case "sentinel_password":
        if (scheme !== "sentinel") return fail(url, "sentinel_password is for Sentinel URLs");
        parsed.redis.sentinelPassword = value;
        break;
      case "ssl_cert_reqs": {
        if (scheme !== "rediss") {
          return fail(url, "ssl_cert_reqs is for rediss:// URLs (redis:// is not encrypted)");
        }
        const level = value.toLowerCase().replace(/^cert_/, "");
        if (!["required", "optional", "none"].includes(level)) {
          return fail(
            url,
            `ssl_cert_reqs must be required, optional or none, got ${JSON.stringify(value)}`,
          );
        }
        // Node has no "optional": a certificate is verified when checked at all.
        parsed.redis.tls = { rejectUnauthorized: level !== "none" };
        break;
      }
      case "socket_connect_timeout":
        parsed.redis.connectTimeout = seconds(url, name, value);
        break;
      case "socket_timeout":
        parsed.redis.commandTimeout = seconds(url, name, value);
        break;
      case "reconnect_attempts": {
        const n = Number(value);
        if (!/^\d+$/.test(value.trim()) || n < 1) {
          return fail(
            url,
            `reconnect_attempts must be a whole number of 1 or more, got "${value}"`,
          );
        }
        parsed.reconnectAttempts = n;
        break;
      }
      default: {
        const known = Object.entries(PARAMETERS)
          .map(([key, meaning]) => `${key} (${meaning})`)
          .join(", ");
        return fail(url, `unknown parameter "${name}"; known: ${known}`);
      }
    }
  }
  if (scheme === "rediss") parsed.redis.tls ??= {};
}
