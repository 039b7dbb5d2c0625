import { configError } from "./errors.ts";

/** Where and how to connect: what a URL says, with kombu's defaults filled in. */
export interface BrokerAddress {
  protocol: "amqp" | "amqps";
  hostname: string;
  port: number;
  username: string;
  password: string;
  /** Decoded: `/` for `amqp://host//` and `amqp://host/`, `app` for `amqp://host/app`. */
  vhost: string;
  /** Seconds; undefined takes the server's proposal. */
  heartbeat?: number;
  connectTimeoutMs?: number;
  /** `?reconnect_attempts=`: the `reconnectAttempts` option, from the URL. */
  reconnectAttempts?: number;
  /** From kombu's `ssl_*` parameters; files are read when connecting. */
  tls?: {
    caFile?: string;
    certFile?: string;
    keyFile?: string;
    rejectUnauthorized?: boolean;
  };
}

/** Celery's default broker: what `amqp://` and `rpc://` mean without a host. */
export const DEFAULT_BROKER_URL = "amqp://guest:guest@localhost:5672//";

const FORMS =
  "use amqp://user:password@host:5672/vhost (amqps:// for TLS, port 5671); " +
  "amqp://guest:guest@localhost:5672// is the vhost /, as in Celery";

const SCHEMES: Record<string, "amqp" | "amqps"> = {
  amqp: "amqp",
  pyamqp: "amqp",
  rpc: "amqp",
  amqps: "amqps",
};

const PARAMETERS = [
  "heartbeat",
  "connect_timeout",
  "ssl_cert_reqs",
  "ssl_ca_certs",
  "ssl_certfile",
  "ssl_keyfile",
  "reconnect_attempts",
];

function decode(part: string, what: string, url: string): string {
  try {
    return decodeURIComponent(part);
  } catch (cause) {
    throw configError(
      `the ${what} in ${redact(url)} is not valid percent-encoding: ${FORMS}`,
      cause,
    );
  }
}

/** The URL with its password replaced, for error messages and logs. */
export function redact(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, "$1:***@");
}

function seconds(name: string, value: string, url: string): number {
  if (!/^\d+(\.\d+)?$/.test(value)) {
    throw configError(
      `${name} in ${redact(url)} must be a number of seconds, got ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

/**
 * Reads a broker URL as kombu does: `amqp://user:password@host:port/vhost`, where the vhost is
 * the path after the first slash, percent-decoded (`//` and `/%2F` are both the vhost `/`, and an
 * empty path is `/` too). User and password default to `guest`, the host to `localhost`, the port
 * to 5672 (5671 for `amqps://`). `pyamqp://` is read as `amqp://`, and `rpc://` (the result
 * backend) as the broker URL it stands for.
 */
export function parseAmqpUrl(url: string): BrokerAddress {
  if (url.includes(";")) {
    throw configError(
      `${redact(url)} lists several brokers; celery-ts connects to one: give one URL (${FORMS})`,
    );
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  const protocol = scheme === undefined ? undefined : SCHEMES[scheme];
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!protocol || !parsed) {
    throw configError(`${JSON.stringify(redact(url))} is not an AMQP URL: ${FORMS}`);
  }
  const hostname = parsed.hostname.replace(/^\[|\]$/g, "") || "localhost";
  const port = parsed.port === "" ? (protocol === "amqps" ? 5671 : 5672) : Number(parsed.port);
  const path = parsed.pathname.startsWith("/") ? parsed.pathname.slice(1) : parsed.pathname;
  const address: BrokerAddress = {
    protocol,
    hostname,
    port,
    username: parsed.username === "" ? "guest" : decode(parsed.username, "user name", url),
    password: parsed.password === "" ? "guest" : decode(parsed.password, "password", url),
    vhost: decode(path, "vhost", url) || "/",
  };
  const tls: NonNullable<BrokerAddress["tls"]> = {};
  for (const [name, value] of parsed.searchParams) {
    switch (name) {
      case "heartbeat":
        address.heartbeat = seconds(name, value, url);
        break;
      case "connect_timeout":
        address.connectTimeoutMs = seconds(name, value, url) * 1000;
        break;
      case "reconnect_attempts":
        if (!/^\d+$/.test(value) || Number(value) < 1) {
          throw configError(
            `reconnect_attempts in ${redact(url)} must be a whole number of 1 or more, got ${JSON.stringify(value)}`,
          );
        }
        address.reconnectAttempts = Number(value);
        break;
      case "ssl_cert_reqs":
        if (!["CERT_NONE", "CERT_OPTIONAL", "CERT_REQUIRED"].includes(value)) {
          throw configError(
            `ssl_cert_reqs in ${redact(url)} must be CERT_NONE, CERT_OPTIONAL or CERT_REQUIRED`,
          );
        }
        tls.rejectUnauthorized = value === "CERT_REQUIRED";
        break;
      case "ssl_ca_certs":
        tls.caFile = value;
        break;
      case "ssl_certfile":
        tls.certFile = value;
        break;
      case "ssl_keyfile":
        tls.keyFile = value;
        break;
      default:
        throw configError(
          `unknown parameter ${JSON.stringify(name)} in ${redact(url)} (known: ${PARAMETERS.join(", ")})`,
        );
    }
  }
  if (Object.keys(tls).length > 0) {
    if (protocol !== "amqps") {
      throw configError(`ssl_* parameters in ${redact(url)} need an amqps:// URL`);
    }
    address.tls = tls;
  }
  return address;
}
