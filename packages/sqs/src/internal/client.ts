import type { SQSClient } from "@aws-sdk/client-sqs";
import type { ErrorContext } from "./errors.ts";

/**
 * Runs SDK calls for the transport: refuses after `close()`, and maps what the SDK throws to a
 * `CeleryTsError` that names the action and the queue.
 */
export interface SqsCaller {
  call<T>(context: ErrorContext, work: (client: SQSClient) => Promise<T>): Promise<T>;
}
