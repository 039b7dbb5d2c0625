// A consumer in its own process, for tests that kill it: node consumer-process.ts <url> <queue> <prefetch>.
// Prints "received <n>" after each delivery and never acknowledges.
import { createAmqpTransport } from "../../src/index.ts";

const [url, queue, prefetch] = process.argv.slice(2);
const transport = createAmqpTransport({ url: url! });
let received = 0;
void transport.consume(
  [queue!],
  () => {
    received++;
    process.stdout.write(`received ${received}\n`);
  },
  { prefetch: Number(prefetch), signal: new AbortController().signal },
);
