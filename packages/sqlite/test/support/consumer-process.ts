// A worker process for the multi-process tests: consumes one queue of a SQLite file and reports
// each delivery to the parent over IPC. Run as `node consumer-process.ts '<json args>'`.
import { createSqliteTransport } from "../../src/index.ts";

export interface ConsumerArgs {
  path: string;
  queue: string;
  /** "ack": ack each message after a moment; "hold": never settle (to be killed). */
  mode: "ack" | "hold";
  visibilityTimeout: number;
  prefetch: number;
}

export type ConsumerReport =
  | { type: "ready" }
  | { type: "delivered"; id: string; redelivered: boolean }
  | { type: "acked"; id: string };

const args = JSON.parse(process.argv[2] ?? "{}") as ConsumerArgs;
const report = (message: ConsumerReport): void => {
  process.send?.(message);
};

const transport = createSqliteTransport({
  path: args.path,
  visibilityTimeout: args.visibilityTimeout,
});
await transport.connect();
const controller = new AbortController();
const consuming = transport.consume(
  [args.queue],
  (delivery) => {
    const id = String(delivery.message?.headers.id);
    report({ type: "delivered", id, redelivered: delivery.redelivered });
    if (args.mode === "ack") {
      setTimeout(() => {
        void delivery.ack().then(() => report({ type: "acked", id }));
      }, Math.random() * 3);
    }
  },
  { prefetch: args.prefetch, signal: controller.signal },
);

process.on("message", (message) => {
  if (message !== "stop") return;
  controller.abort();
  void consuming.then(() => transport.close()).then(() => process.exit(0));
});
report({ type: "ready" });
