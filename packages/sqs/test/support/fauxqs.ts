import { randomUUID } from "node:crypto";
import {
  CreateQueueCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
  type Message,
} from "@aws-sdk/client-sqs";
import { buildApp } from "fauxqs";
import { afterAll, beforeAll } from "vitest";
import type { SqsTransportOptions } from "../../src/index.ts";

export const REGION = "us-east-1";
/** fauxqs accepts any credentials; these keep the SDK off the AWS credential chain. */
export const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };

export interface Fauxqs {
  /** `http://127.0.0.1:<port>` */
  endpoint(): string;
  /** A plain SDK client on the server, to look at queues as another program would. */
  admin(): SQSClient;
  /** Options for a transport on this server. */
  options(extra?: SqsTransportOptions): SqsTransportOptions;
  /** The URL of an SQS queue (by its SQS name), created if missing. */
  queueUrl(sqsName: string, attributes?: Record<string, string>): Promise<string>;
  /** Puts a raw MessageBody on a queue, as a foreign producer would. */
  sendRaw(sqsName: string, body: string): Promise<void>;
  /** Receives messages from a queue directly, hiding them for `visibility` seconds. */
  receiveRaw(sqsName: string, visibility?: number): Promise<Message[]>;
}

/**
 * Starts fauxqs in this process for the test file, on a loopback port the OS picks, and stops
 * it after. Nothing listens beyond 127.0.0.1, and every client points at it.
 */
export function useFauxqs(): Fauxqs {
  let app: ReturnType<typeof buildApp> | undefined;
  let endpoint: string | undefined;
  let admin: SQSClient | undefined;

  beforeAll(async () => {
    app = buildApp({ logger: false, defaultRegion: REGION });
    endpoint = await app.listen({ port: 0, host: "127.0.0.1" });
    admin = new SQSClient({ endpoint, region: REGION, credentials: CREDENTIALS });
  });
  afterAll(async () => {
    admin?.destroy();
    await app?.close();
  });

  const server: Fauxqs = {
    endpoint() {
      if (!endpoint) throw new Error("fauxqs is not running (use it inside tests)");
      return endpoint;
    },
    admin() {
      if (!admin) throw new Error("fauxqs is not running (use it inside tests)");
      return admin;
    },
    options(extra = {}) {
      return {
        endpoint: server.endpoint(),
        region: REGION,
        credentials: CREDENTIALS,
        waitTime: 1,
        visibilityTimeout: 2,
        ...extra,
      };
    },
    async queueUrl(sqsName, attributes = {}) {
      try {
        const { QueueUrl } = await server
          .admin()
          .send(new GetQueueUrlCommand({ QueueName: sqsName }));
        if (QueueUrl) return QueueUrl;
      } catch {
        // not there yet
      }
      const { QueueUrl } = await server.admin().send(
        new CreateQueueCommand({
          QueueName: sqsName,
          Attributes: { ...(sqsName.endsWith(".fifo") && { FifoQueue: "true" }), ...attributes },
        }),
      );
      if (!QueueUrl) throw new Error(`fauxqs returned no URL for ${sqsName}`);
      return QueueUrl;
    },
    async sendRaw(sqsName, body) {
      const QueueUrl = await server.queueUrl(sqsName);
      await server.admin().send(
        new SendMessageCommand({
          QueueUrl,
          MessageBody: body,
          ...(sqsName.endsWith(".fifo") && {
            MessageGroupId: "default",
            MessageDeduplicationId: randomUUID(),
          }),
        }),
      );
    },
    async receiveRaw(sqsName, visibility = 30) {
      const QueueUrl = await server.queueUrl(sqsName);
      const { Messages = [] } = await server.admin().send(
        new ReceiveMessageCommand({
          QueueUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: visibility,
          MessageAttributeNames: ["All"],
          MessageSystemAttributeNames: ["All"],
        }),
      );
      return Messages;
    },
  };
  return server;
}
