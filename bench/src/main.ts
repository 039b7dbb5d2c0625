// `pnpm bench`: throughput and latency of celery-ts, side by side with its peers in one run,
// written to bench/RESULTS.md with the machine and the date. BENCH=sqlite,redis picks sections.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { amqpSection } from "./amqp.ts";
import { redisSection } from "./redis.ts";
import { renderReport, type Section } from "./report.ts";
import { sqliteSection } from "./sqlite.ts";
import { sqsSection } from "./sqs.ts";

const sections: Record<string, () => Promise<Section>> = {
  sqlite: () => sqliteSection(Number(process.env.BENCH_SQLITE_TASKS ?? 5_000)),
  redis: () => redisSection(Number(process.env.BENCH_REDIS_TASKS ?? 20_000)),
  amqp: () => amqpSection(Number(process.env.BENCH_AMQP_TASKS ?? 10_000)),
  sqs: () => sqsSection(Number(process.env.BENCH_SQS_TASKS ?? 2_000)),
};
const selected = (process.env.BENCH ?? Object.keys(sections).join(",")).split(",");

const results: Section[] = [];
for (const name of selected) {
  const run = sections[name];
  if (!run)
    throw new Error(`unknown bench section "${name}" (known: ${Object.keys(sections).join(", ")})`);
  console.error(`bench: ${name}...`);
  results.push(await run());
}
const report = renderReport(results);
writeFileSync(join(import.meta.dirname, "..", "RESULTS.md"), report);
console.log(report);
