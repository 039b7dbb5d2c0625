import { describe, expect, it } from "vitest";
import {
  CeleryTsError,
  createMemoryTransport,
  createTaskMessage,
  decodeTaskMessage,
  encodeTaskMessage,
  isCeleryTsError,
  publishAll,
  settleBatch,
  unsentOf,
  type PublishItem,
  type Transport,
} from "../src/index.ts";

const batchOf = (count: number, queue: string): PublishItem[] =>
  Array.from({ length: count }, (_, i) => ({
    message: encodeTaskMessage(createTaskMessage({ task: "t.n", args: [i] })),
    options: { queue },
  }));
const numberOf = (item: PublishItem): unknown => decodeTaskMessage(item.message).args[0];
const rejection = (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => undefined,
    (error: unknown) => error,
  );

describe("publishAll's fallback (a transport without publishBatch)", () => {
  it("stops at the first message the broker refuses and names it and every later one as unsent", async () => {
    const memory = createMemoryTransport();
    const published: unknown[] = [];
    const refusing: Transport = {
      ...memory,
      async publish(message, options) {
        const n = decodeTaskMessage(message).args[0];
        if (n === 2) {
          throw new CeleryTsError("CONNECTION", "the broker went away", { retryable: true });
        }
        published.push(n);
        await memory.publish(message, options);
      },
    };
    const batch = batchOf(5, "q");
    const error = await rejection(publishAll(refusing, batch));
    expect(published).toEqual([0, 1]);
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect(error).toMatchObject({ retryable: true });
    const id = batch[2]!.message.headers.id as string;
    expect((error as Error).message).toContain(
      `3 of 5 messages were not published (the others are on the broker): task ${id}: `,
    );
    expect(unsentOf(error)?.map(numberOf)).toEqual([2, 3, 4]);
    expect(await memory.purge("q")).toBe(2);
    await memory.close();
  });

  it("rejects a batch of one with the broker's own error", async () => {
    const closed = createMemoryTransport();
    await closed.close();
    const error = await rejection(publishAll(closed, batchOf(1, "q")));
    expect(isCeleryTsError(error, "CLOSED")).toBe(true);
    expect(unsentOf(error)).toBeUndefined();
  });
});

describe("settleBatch", () => {
  it("resolves when every message reached the broker", () => {
    const batch = batchOf(2, "q");
    expect(() =>
      settleBatch(batch, [
        { status: "fulfilled", value: undefined },
        { status: "fulfilled", value: undefined },
      ]),
    ).not.toThrow();
  });

  it("is retryable only when every failure is, and lists at most three reasons", () => {
    const batch = batchOf(6, "q");
    const retryable = new CeleryTsError("CONNECTION", "lost", { retryable: true });
    const final = new CeleryTsError("ENCODE", "too big");
    let error: unknown;
    try {
      settleBatch(
        batch,
        batch.map((_, i) =>
          i === 0
            ? { status: "fulfilled", value: undefined }
            : { status: "rejected", reason: i === 5 ? final : retryable },
        ),
        "sqs",
      );
    } catch (thrown) {
      error = thrown;
    }
    expect(isCeleryTsError(error, "CONNECTION")).toBe(true);
    expect(error).toMatchObject({ retryable: false });
    expect((error as Error).message).toMatch(/^\[celery-ts:sqs\] 5 of 6 messages .*; and 2 more$/);
    expect(unsentOf(error)?.map(numberOf)).toEqual([1, 2, 3, 4, 5]);
  });
});
