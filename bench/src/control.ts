// Remote control and events cost: the same Redis processing figures with them off, at their
// default (mailbox and heartbeats), and with task events on (-E), side by side in one run.
import { processingCost } from "./celery-ts.ts";
import { redisSetup } from "./redis.ts";
import type { Section } from "./report.ts";
import { add, cell, MICROS, RATE, type Samples } from "./samples.ts";
import { ROUNDS } from "./servers.ts";

const MODES = {
  off: { remoteControl: false, heartbeat: false },
  default: {},
  events: { taskEvents: true },
} as const;

export async function controlSection(total: number): Promise<Section> {
  const figures: Samples = {};
  const cpu: Samples = {};
  const modes = Object.entries(MODES);
  // Interleaved rounds, so that a noisy moment of the shared machine hits every mode alike; the
  // order turns each round, so that no mode always runs first or last.
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < modes.length; i++) {
      const [mode, options] = modes[(round + i) % modes.length]!;
      const cost = await processingCost(redisSetup, 50, total, options);
      add(figures, mode, cost.perSecond);
      add(cpu, mode, cost.cpuMicrosPerTask);
    }
  }
  // The last round's results would otherwise stay in the run's database.
  await redisSetup.fresh();
  return {
    title: `Remote control and events on Redis: celery-ts processing ${total} no-op tasks at concurrency 50, ${ROUNDS} interleaved rounds`,
    columns: ["off", "default (mailbox, heartbeats)", "task events on (-E)"],
    rows: [
      {
        scenario: "tasks done per second",
        cells: ["off", "default", "events"].map((mode) => cell(figures[mode], figures.off, RATE)),
      },
      {
        scenario: "CPU time per task",
        cells: ["off", "default", "events"].map((mode) => cell(cpu[mode], cpu.off, MICROS)),
      },
    ],
    notes: `"off" is \`remoteControl: false, heartbeat: false\`; "default" listens on the pidbox and sends a
heartbeat every 2 s; "task events on" sends task-received, task-started and task-succeeded per
task, batched as a Celery worker does: the task events of one event-loop turn (up to 128) go out
as one \`task.multi\` PUBLISH. Medians of ${ROUNDS} interleaved rounds (the order of the modes turns
each round), ± half their range; ratios are to "off", the median of the rounds' ratios (above 1× is
better, for the CPU time too). Each figure is a worker in the bench's process, start-up included,
on the run's Redis; the CPU time is the process's (user and system) while the worker ran, which
the other sessions' load moves far less than the rate.`,
  };
}
