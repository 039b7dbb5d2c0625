// `pnpm bench`: throughput and latency of celery-ts, side by side with its peers in one run,
// written to bench/RESULTS.md with the machine, the date and the load. BENCH=sqlite,redis picks
// sections; `pnpm bench --quick` runs the Redis section with fewer tasks in one round and prints
// the report without writing RESULTS.md. Servers come from the tests' environment variables.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { amqpSection } from "./amqp.ts";
import { concurrencySection } from "./concurrency.ts";
import { controlSection } from "./control.ts";
import { fleetSection } from "./fleet.ts";
import { memorySection } from "./memory.ts";
import { postgresSection } from "./postgres.ts";
import { enqueueSection, redisSection } from "./redis.ts";
import { renderReport, type Section } from "./report.ts";
import { QUICK } from "./servers.ts";
import { sqliteSection } from "./sqlite.ts";
import { sqsSection } from "./sqs.ts";

const tasks = (name: string, full: number, quick: number): number =>
  Number(process.env[`BENCH_${name}_TASKS`] ?? (QUICK ? quick : full));

const sections: Record<string, () => Promise<Section>> = {
  redis: () => redisSection(tasks("REDIS", 20_000, 1_000)),
  enqueue: () => enqueueSection(tasks("ENQUEUE", 8_000, 2_000)),
  memory: () => memorySection(tasks("MEMORY", 100_000, 20_000)),
  concurrency: () => concurrencySection(tasks("CONCURRENCY", 4_000, 1_000)),
  sqlite: () => sqliteSection(tasks("SQLITE", 5_000, 500)),
  amqp: () => amqpSection(tasks("AMQP", 10_000, 2_000)),
  sqs: () => sqsSection(tasks("SQS", 2_000, 500)),
  control: () => controlSection(tasks("CONTROL", 10_000, 2_000)),
  postgres: () => postgresSection(tasks("POSTGRES", 2_000, 500)),
  fleet: () => fleetSection(Number(process.env.BENCH_FLEET_SECONDS ?? (QUICK ? 10 : 60))),
};
const quickSections = ["redis"];
const selected = (
  process.env.BENCH ?? (QUICK ? quickSections : Object.keys(sections)).join(",")
).split(",");

const started = performance.now();
const results: Section[] = [];
for (const name of selected) {
  const run = sections[name];
  if (!run)
    throw new Error(`unknown bench section "${name}" (known: ${Object.keys(sections).join(", ")})`);
  console.error(`bench: ${name}...`);
  results.push(await run());
}
const report = renderReport(results, (performance.now() - started) / 1000);
if (!QUICK && !process.env.BENCH)
  writeFileSync(join(import.meta.dirname, "..", "RESULTS.md"), report);
console.log(report);
process.exit(0);
