import { isCeleryTsError } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { decodeMessageBody, encodeMessageBody } from "../src/internal/body.ts";
import {
  deadLetterQueueName,
  entityName,
  siblingQueueUrl,
  sqsQueueName,
} from "../src/internal/queue-names.ts";

describe("queue names, as kombu's entity_name", () => {
  // Expected values computed with kombu 5.2.4's CHARS_REPLACE_TABLE and entity_name.
  it.each([
    ["celery", "celery"],
    ["tasks.email", "tasks-email"],
    ["my.queue.fifo", "my-queue.fifo"],
    ["a:b/c@d", "a_b_c_d"],
    ["weird!#$%&'()*+,/:;<=>?@[\\]^`{|}~name", "weird____________________________name"],
    ["under_score-dash", "under_score-dash"],
    ["café.x", "café-x"],
    ["with space", "with space"],
  ])("%s becomes %s", (name, expected) => {
    expect(entityName(name)).toBe(expected);
  });

  it("prefixes before translating, as canonical_queue_name does", () => {
    expect(sqsQueueName("tasks.email", "prod.")).toBe("prod-tasks-email");
    expect(sqsQueueName("jobs.fifo", "prod-")).toBe("prod-jobs.fifo");
    expect(sqsQueueName("celery", "")).toBe("celery");
  });

  it.each([
    ["a character SQS refuses", "café", ""],
    ["a space", "with space", ""],
    ["more than 80 characters", "q".repeat(75), "prefix-"],
    ["an empty name", "", ""],
  ])("rejects %s with a CONFIG error naming the queue", (_case, queue, prefix) => {
    let error: unknown;
    try {
      sqsQueueName(queue, prefix);
    } catch (e) {
      error = e;
    }
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toContain(JSON.stringify(queue));
  });

  it("names dead-letter queues <name>-dlq, keeping .fifo last", () => {
    expect(deadLetterQueueName("celery")).toBe("celery-dlq");
    expect(deadLetterQueueName("jobs.fifo")).toBe("jobs-dlq.fifo");
    expect(() => deadLetterQueueName("q".repeat(78))).toThrow(/dead-letter queue/);
  });

  it("finds a redrive target's URL next to its source queue", () => {
    expect(
      siblingQueueUrl(
        "https://sqs.eu-west-1.amazonaws.com/123456789012/celery",
        "arn:aws:sqs:eu-west-1:123456789012:celery-dead",
      ),
    ).toBe("https://sqs.eu-west-1.amazonaws.com/123456789012/celery-dead");
    expect(siblingQueueUrl("http://127.0.0.1:4566/000000000000/q", "not an arn")).toBeUndefined();
  });
});

describe("message bodies, as kombu's SQS transport writes and reads them", () => {
  const envelope = '{"body": "W10=", "headers": {"task": "t"}, "properties": {}}';

  it("base64-encodes the whole envelope, or leaves it as JSON", () => {
    expect(encodeMessageBody(envelope, true)).toBe(Buffer.from(envelope).toString("base64"));
    expect(encodeMessageBody(envelope, false)).toBe(envelope);
  });

  it("reads both, as _optional_b64_decode does", () => {
    expect(decodeMessageBody(Buffer.from(envelope).toString("base64"))).toBe(envelope);
    expect(decodeMessageBody(envelope)).toBe(envelope);
    expect(decodeMessageBody("{not json")).toBe("{not json");
    // Non-canonical base64 is taken as it is.
    expect(decodeMessageBody("YQ")).toBe("YQ");
    // Base64 of bytes that are not UTF-8 text stays as it is too.
    expect(decodeMessageBody("//79")).toBe("//79");
  });
});
