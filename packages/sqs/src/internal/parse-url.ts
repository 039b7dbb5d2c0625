import { configError } from "./errors.ts";

/** What an `sqs://` URL says: a subset of the transport's options. */
export interface SqsUrlOptions {
  region?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  queueNamePrefix?: string;
  visibilityTimeout?: number;
  waitTime?: number;
  maxReceiveCount?: number;
  base64Encoding?: boolean;
}

const FORMS =
  "use sqs:// (credentials from the AWS chain), sqs://<access key id>:<secret access key>@ " +
  "(percent-encode / and + in the key), or sqs://<host>:<port> for an SQS-compatible server, " +
  "optionally followed by ?region=eu-west-1&queue_name_prefix=prod-&visibility_timeout=1800" +
  "&wait_time_seconds=10&endpoint=http://127.0.0.1:4566";

type Parameter = {
  [K in keyof SqsUrlOptions]-?: SqsUrlOptions[K] extends number | undefined
    ? { option: K; kind: "integer" }
    : SqsUrlOptions[K] extends boolean | undefined
      ? { option: K; kind: "boolean" }
      : SqsUrlOptions[K] extends string | undefined
        ? { option: K; kind: "string" }
        : never;
}[keyof SqsUrlOptions];

// kombu's transport option names where it has one.
const PARAMETERS: Record<string, Parameter | { option: "isSecure"; kind: "boolean" }> = {
  region: { option: "region", kind: "string" },
  endpoint: { option: "endpoint", kind: "string" },
  queue_name_prefix: { option: "queueNamePrefix", kind: "string" },
  visibility_timeout: { option: "visibilityTimeout", kind: "integer" },
  wait_time_seconds: { option: "waitTime", kind: "integer" },
  max_receive_count: { option: "maxReceiveCount", kind: "integer" },
  sqs_base64_encoding: { option: "base64Encoding", kind: "boolean" },
  is_secure: { option: "isSecure", kind: "boolean" },
};

function decode(part: string, url: string): string {
  try {
    return decodeURIComponent(part);
  } catch (cause) {
    throw configError(`bad percent-encoding in ${JSON.stringify(url)}: ${FORMS}`, cause);
  }
}

/**
 * Reads kombu's SQS URL forms: `sqs://`, `sqs://key:secret@`, and `sqs://host:port` for an
 * SQS-compatible server (http unless `?is_secure=true`, as in kombu). Query parameters set the
 * options kombu takes as transport options.
 */
export function parseSqsUrl(url: string): SqsUrlOptions {
  const match = /^sqs:\/\/(?:([^:@/?#]*)(?::([^@/?#]*))?@)?([^@/?#]*)\/?(?:\?([^#]*))?$/i.exec(url);
  if (!match) throw configError(`${JSON.stringify(url)} is not an SQS URL: ${FORMS}`);
  const [, user, password, host = "", query = ""] = match;
  const options: SqsUrlOptions = {};
  if (user !== undefined && (user !== "" || (password ?? "") !== "")) {
    if (user === "" || !password) {
      throw configError(
        `${JSON.stringify(url)} has an access key id or a secret access key but not both: ${FORMS}`,
      );
    }
    options.credentials = {
      accessKeyId: decode(user, url),
      secretAccessKey: decode(password, url),
    };
  }
  let secure = false;
  for (const [name, value] of new URLSearchParams(query)) {
    const parameter = PARAMETERS[name];
    if (!parameter) {
      throw configError(
        `unknown parameter ${JSON.stringify(name)} in ${JSON.stringify(url)} ` +
          `(known: ${Object.keys(PARAMETERS).join(", ")})`,
      );
    }
    if (parameter.kind === "integer") {
      if (!/^[0-9]+$/.test(value)) {
        throw configError(`${name} in ${JSON.stringify(url)} must be a whole number of seconds`);
      }
      options[parameter.option] = Number(value);
    } else if (parameter.kind === "boolean") {
      const lower = value.toLowerCase();
      if (!["true", "false", "1", "0", "yes", "no"].includes(lower)) {
        throw configError(`${name} in ${JSON.stringify(url)} must be true or false`);
      }
      const flag = ["true", "1", "yes"].includes(lower);
      if (parameter.option === "isSecure") secure = flag;
      else options[parameter.option] = flag;
    } else {
      if (value === "" && parameter.option !== "queueNamePrefix") {
        throw configError(`${name} in ${JSON.stringify(url)} is empty`);
      }
      options[parameter.option] = value;
    }
  }
  if (host !== "") {
    if (options.endpoint !== undefined) {
      throw configError(
        `${JSON.stringify(url)} names both a host and ?endpoint=; give one of them`,
      );
    }
    options.endpoint = `${secure ? "https" : "http"}://${host}`;
  }
  return options;
}
