import { CeleryTsError, type Transport } from "@celery-ts/core";

/**
 * The client's side of the in-memory broker: refuses what a real worker could never run, and
 * tells the test client about each send that is due now.
 */
export function checkedTransport(
  inner: Transport,
  queues: readonly string[],
  names: ReadonlySet<string>,
  onSend: (id: string) => void,
): Transport {
  return {
    ...inner,
    async publish(message, route) {
      const { task, id } = message.headers as { task: string; id: string };
      if (!queues.includes(route.queue)) {
        throw new CeleryTsError(
          "CONFIG",
          `task ${task} was sent to queue "${route.queue}", which the test worker does not ` +
            `consume (${queues.join(", ")}): pass queues to createTestClient`,
          { pkg: "worker" },
        );
      }
      if (!names.has(task)) {
        throw new CeleryTsError(
          "CONFIG",
          `task ${task} is not among the test worker's tasks, so a worker would reject it; ` +
            "pass its definition in createTestClient({ tasks })",
          { pkg: "worker" },
        );
      }
      if (!(route.availableAt !== undefined && route.availableAt > Date.now())) onSend(id);
      await inner.publish(message, route);
    },
  };
}
