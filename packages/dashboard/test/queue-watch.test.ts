// What the dashboard reads from the broker for its queues, against a real in-memory broker whose
// reads are counted: names from requests never join the queues shown, and dead letters (read one
// by one) are not read on every poll.
import { createMemoryTransport, type Transport } from "@celery-ts/core";
import { expect, it } from "vitest";
import { QueueWatch } from "../src/internal/queue-watch.ts";

/** The transport, with a count of its dead-letter reads. */
function counted(): { transport: Transport; reads: string[] } {
  const inner = createMemoryTransport();
  const reads: string[] = [];
  const transport: Transport = Object.assign(Object.create(inner) as Transport, {
    deadLetters: (queue: string, options?: { limit?: number }) => {
      reads.push(queue);
      return inner.deadLetters!(queue, options);
    },
  });
  return { transport, reads };
}

it("refreshes a queue named by a request without showing it from then on", async () => {
  const { transport } = counted();
  const watch = new QueueWatch(transport, ["shown"], { deadLetterEvery: 60_000 });
  await watch.refresh("posted-by-anyone");
  expect(watch.list().map((q) => q.name)).toEqual(["shown"]);
  await transport.close();
});

it("counts dead letters once per interval, and at once after an action on the queue", async () => {
  const { transport, reads } = counted();
  const watch = new QueueWatch(transport, ["a", "b"], { deadLetterEvery: 60_000 });
  await watch.refresh();
  expect(reads.sort()).toEqual(["a", "b"]);
  await watch.refresh();
  await watch.refresh();
  expect(reads).toHaveLength(2);
  expect(watch.list().map((q) => q.deadLetters)).toEqual([0, 0]);
  await watch.refresh("a");
  expect(reads).toHaveLength(3);
  await transport.close();
});
