import { SQSClient, type SQSClientConfig } from "@aws-sdk/client-sqs";
import type { Logger } from "@celery-ts/core";
import type { SqsCaller } from "./client.ts";
import { mapSqsError } from "./errors.ts";

export interface ClientSettings {
  region: string;
  maxAttempts: number;
  /** Seconds a long poll waits: requests are given that and some slack. */
  waitTime: number;
  endpoint: string | undefined;
  credentials: SQSClientConfig["credentials"] | undefined;
  logger: Logger;
}

/** The SDK client the transport builds when none is given. */
export function buildClient(settings: ClientSettings): SQSClient {
  const { logger } = settings;
  return new SQSClient({
    region: settings.region,
    maxAttempts: settings.maxAttempts,
    ...(settings.endpoint !== undefined && { endpoint: settings.endpoint }),
    ...(settings.credentials !== undefined && { credentials: settings.credentials }),
    requestHandler: {
      connectionTimeout: 5_000,
      // A long poll answers within waitTime; past that (and some slack) it is lost.
      requestTimeout: (settings.waitTime + 20) * 1_000,
      throwOnRequestTimeout: true,
      httpAgent: { keepAlive: true, maxSockets: 256 },
      httpsAgent: { keepAlive: true, maxSockets: 256 },
    },
    // The SDK's own warnings go to our logger, never to the console.
    logger: {
      debug: () => {},
      info: () => {},
      warn: (...content: unknown[]) =>
        logger.warn("sqs: AWS SDK warning", { detail: content.map(String).join(" ") }),
      error: (...content: unknown[]) =>
        logger.error("sqs: AWS SDK error", { detail: content.map(String).join(" ") }),
    },
  });
}

/**
 * The one way SDK calls are made: refused once the client is gone (`closed()`), errors mapped to
 * a `CeleryTsError` naming the action, the queue and the endpoint; after a forced close every
 * failure reads as CLOSED.
 */
export function createCaller(options: {
  client(): SQSClient;
  endpointLabel: string | undefined;
  closed(): boolean;
  forced(): boolean;
  closedError(): Error;
}): SqsCaller {
  return {
    async call(context, work) {
      if (options.closed()) throw options.closedError();
      try {
        return await work(options.client());
      } catch (error) {
        if (options.forced()) throw options.closedError();
        throw mapSqsError(error, {
          ...context,
          ...(options.endpointLabel !== undefined && { endpoint: options.endpointLabel }),
        });
      }
    },
  };
}
