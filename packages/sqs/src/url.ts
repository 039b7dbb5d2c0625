import type { Transport } from "@celery-ts/core";
import type { DriverUrlOptions } from "@celery-ts/core/driver";
import { takeDeliveryLimitParameters } from "@celery-ts/core/driver";
import { PKG } from "./internal/errors.ts";
import { parseSqsUrl } from "./internal/parse-url.ts";
import { createSqsTransport } from "./sqs-transport.ts";

/**
 * The broker for a URL in kombu's forms: `sqs://` (credentials from the AWS chain),
 * `sqs://<access key id>:<secret access key>@`, or `sqs://<host>:<port>` for an SQS-compatible
 * server; `?region=`, `?queue_name_prefix=`, `?visibility_timeout=`, `?wait_time_seconds=`,
 * `?endpoint=`, `?max_receive_count=`, `?sqs_base64_encoding=` and `?is_secure=` set options.
 * SQS has no result backend: pair it with a Redis or SQLite one.
 */
export function createTransportFromUrl(url: string, fromUrl: DriverUrlOptions = {}): Transport {
  const { url: rest, options } = takeDeliveryLimitParameters(PKG, url);
  return createSqsTransport({ ...parseSqsUrl(rest), ...options, ...fromUrl });
}
