// The mutation check: applies each named mutant to each transport, runs the shared suites
// against it, and fails when a mutant survives. Prints which test killed each mutant.
//
//   node packages/testing/scripts/mutation-check.ts [--full] [transport ...]
//
// By default each mutant runs only the tests designed to kill it (mutation/killers.ts), in the
// transport suite and in the worker suite side by side, with --bail; each suite's designed
// killers must kill it (or all be skipped: a capability the transport lacks). Transports are
// checked in parallel. --full runs every shared suite (transport, then worker) under each mutant,
// one transport at a time, and a mutant is killed by the first test that fails.
//
// Transports built on the driver kit (createConsumerKit) are mutated in their primitives,
// patched at load (mutation/setup.ts); others at the Transport interface (src/mutants.ts).
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MUTANTS, type MutantName } from "../src/mutants.ts";
import { spawnCollecting } from "../src/spawn-collecting.ts";
import { KILLERS, killerFilter, type Suite } from "../mutation/killers.ts";

const packages = fileURLToPath(new URL("../../", import.meta.url));
const config = fileURLToPath(new URL("../mutation/vitest.config.ts", import.meta.url));

interface Run {
  suite: Suite;
  /** The package folder under packages/. */
  pkg: string;
  files: string[];
  /** vitest's -t: the describe of this transport in a file that runs several. */
  filter?: string;
}

interface Target {
  name: string;
  /** Where the transport's source is, to tell whether it is built on the driver kit. */
  source: string;
  /** The shared suites on this transport: the transport suite first, it kills fastest. */
  runs: Run[];
}

const TARGETS: Target[] = [
  {
    name: "memory",
    source: "core/src/memory-transport.ts",
    runs: [
      {
        suite: "transport",
        pkg: "testing",
        files: ["test/memory.test.ts"],
        filter: "Transport conformance: memory",
      },
      {
        suite: "worker",
        pkg: "worker",
        files: ["test/worker.test.ts"],
        filter: "Worker conformance: memory",
      },
    ],
  },
  {
    name: "sqlite",
    source: "sqlite/src",
    runs: [
      {
        suite: "transport",
        pkg: "sqlite",
        files: ["test/conformance.integration.test.ts"],
        filter: "Transport",
      },
      {
        suite: "worker",
        pkg: "worker",
        files: ["test/worker.test.ts"],
        filter: "Worker conformance: sqlite",
      },
    ],
  },
  ...["redis", "sqs", "amqp", "postgres"].map((name): Target => ({
    name,
    source: `${name}/src`,
    runs: [
      {
        suite: "transport",
        pkg: name,
        files: ["test/conformance.integration.test.ts"],
        filter: "Transport",
      },
      { suite: "worker", pkg: name, files: ["test/worker-conformance.integration.test.ts"] },
    ],
  })),
];

function sourceText(path: string): string {
  const full = join(packages, path);
  if (!existsSync(full)) return "";
  if (!statSync(full).isDirectory()) return readFileSync(full, "utf8");
  return readdirSync(full, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts"))
    .map((file) => readFileSync(join(full, file), "utf8"))
    .join("\n");
}

interface Outcome {
  status: "killed" | "survived" | "not applicable" | "error";
  detail: string;
}

/** What one suite run under a mutant found. */
type RunResult =
  | { kind: "killed"; detail: string }
  | { kind: "passed"; detail: string }
  | { kind: "skipped"; detail: string }
  | { kind: "error"; detail: string };

interface JsonReport {
  testResults?: {
    name: string;
    message?: string;
    assertionResults?: { fullName: string; status: string; failureMessages?: string[] }[];
  }[];
}

/** Runs `pnpm args` in `cwd`, killed after 10 minutes; resolves with its exit code and output. */
async function spawnRun(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ status: number | null; output: string }> {
  const { code, output } = await spawnCollecting("pnpm", args, { cwd, env, timeoutMs: 600_000 })
    .exited;
  return { status: code, output };
}

/** Runs one suite under the mutant; the killer is the first failed test. */
async function runOnce(
  run: Run,
  mutant: MutantName,
  level: string,
  dir: string,
): Promise<RunResult> {
  const out = join(dir, `report-${run.suite}.json`);
  rmSync(out, { force: true });
  const args = ["exec", "vitest", "run", "--config", config, "--root", join(packages, run.pkg)];
  args.push("--bail", "1", "--reporter", "json", "--outputFile", out, ...run.files);
  if (run.filter) args.push("-t", run.filter);
  const result = await spawnRun(args, join(packages, run.pkg), {
    ...process.env,
    CELERY_TS_MUTANT: mutant,
    CELERY_TS_MUTANT_LEVEL: level,
    CELERY_TS_MUTANT_LOG: join(dir, "applied.log"),
  });
  const report: JsonReport = existsSync(out) ? JSON.parse(readFileSync(out, "utf8")) : {};
  const tests = (report.testResults ?? []).flatMap((file) => file.assertionResults ?? []);
  const failed = tests.find((test) => test.status === "failed");
  const where = `${run.suite} suite (${run.pkg})`;
  if (failed) {
    const why = (failed.failureMessages?.[0] ?? "").split("\n")[0]!.slice(0, 160);
    return { kind: "killed", detail: `${where}: ${failed.fullName}\n      ${why}` };
  }
  const passed = tests.filter((test) => test.status === "passed");
  if (result.status === 0 && passed.length === 0 && tests.length > 0) {
    return { kind: "skipped", detail: `${where}: its designed killers were skipped` };
  }
  if (result.status !== 0 || passed.length === 0) {
    const tail = result.output.trim().split("\n").slice(-5);
    return {
      kind: "error",
      detail: `${where}: vitest exited ${result.status} with ${passed.length} test(s) run: ${tail.join(" | ")}`,
    };
  }
  return { kind: "passed", detail: `${where}: ${passed.map((t) => t.fullName).join("; ")}` };
}

/** The designed-killer runs of one mutant: each suite that has killers for it, filtered. */
function designedRuns(target: Target, mutant: MutantName): Run[] {
  return target.runs
    .filter((run) => KILLERS[mutant][run.suite].length > 0)
    .map((run) => ({ ...run, filter: killerFilter(mutant, run.suite, run.filter ?? "") }));
}

/** --full: every suite in turn; the first test that fails kills the mutant. */
async function fullCheck(
  target: Target,
  mutant: MutantName,
  level: string,
  dir: string,
): Promise<Outcome | undefined> {
  for (const run of target.runs) {
    const result = await runOnce(run, mutant, level, dir);
    if (result.kind === "killed" || result.kind === "error") {
      return { status: result.kind, detail: `[${level}] ${result.detail}` };
    }
  }
  return undefined;
}

/** Default: each suite's designed killers, side by side; every suite that ran must kill it. */
async function designedCheck(
  target: Target,
  mutant: MutantName,
  level: string,
  dir: string,
): Promise<Outcome | undefined> {
  const results = await Promise.all(
    designedRuns(target, mutant).map((run) => runOnce(run, mutant, level, dir)),
  );
  const lines = results.map((result) => `[${level}] ${result.kind}: ${result.detail}`);
  const detail = lines.join("\n    ");
  if (results.some((result) => result.kind === "error")) return { status: "error", detail };
  if (results.some((result) => result.kind === "passed")) return { status: "survived", detail };
  if (results.some((result) => result.kind === "killed")) return { status: "killed", detail };
  return undefined;
}

async function checkAt(
  target: Target,
  mutant: MutantName,
  level: string,
  dir: string,
  full: boolean,
): Promise<Outcome> {
  if (level === "interface" && mutant === "lease-never-renewed") {
    return { status: "not applicable", detail: "no lease below the Transport interface to reach" };
  }
  const log = join(dir, "applied.log");
  rmSync(log, { force: true });
  const outcome = full
    ? await fullCheck(target, mutant, level, dir)
    : await designedCheck(target, mutant, level, dir);
  if (!existsSync(log)) {
    return { status: "not applicable", detail: `the ${level} have nothing it changes` };
  }
  if (outcome) return outcome;
  const which = full ? "every shared suite" : "the tests designed to kill it (mutation/killers.ts)";
  return { status: "survived", detail: `${which} passed with the mutant (${level})` };
}

/**
 * On the driver kit, the mutant breaks the driver's primitives; where that changes nothing (an
 * equivalent mutant: memory's ack has nothing to do), and off the kit, the Transport interface.
 */
async function check(target: Target, mutant: MutantName, dir: string, full: boolean) {
  if (/\bcreateConsumerKit\b/.test(sourceText(target.source))) {
    const outcome = await checkAt(target, mutant, "primitives", dir, full);
    if (outcome.status !== "not applicable" || mutant === "lease-never-renewed") return outcome;
  }
  return checkAt(target, mutant, "interface", dir, full);
}

/** Every mutant on one transport, in turn; prints each outcome as a block. */
async function checkTarget(target: Target, full: boolean): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), `celery-ts-mutation-${target.name}-`));
  let failures = 0;
  try {
    for (const mutant of Object.keys(MUTANTS) as MutantName[]) {
      const began = Date.now();
      const outcome = await check(target, mutant, dir, full);
      const seconds = ((Date.now() - began) / 1000).toFixed(0);
      if (outcome.status === "survived" || outcome.status === "error") failures++;
      const line = `${target.name} / ${mutant}: ${outcome.status.toUpperCase()} (${seconds} s)`;
      console.log(`${line}\n    ${outcome.detail}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return failures;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const full = args.includes("--full");
  const wanted = args.filter((arg) => arg !== "--full");
  const targets = TARGETS.filter(
    (target) =>
      (wanted.length === 0 || wanted.includes(target.name)) &&
      existsSync(join(packages, target.runs[0]!.pkg, target.runs[0]!.files[0]!)),
  );
  const started = Date.now();
  // Transports are independent (own queues, prefixes, files): checked side by side, a few at a
  // time; --full keeps the old one-at-a-time run.
  const parallel = full ? 1 : Number(process.env.CELERY_TS_MUTATION_JOBS ?? 3);
  const queue = [...targets];
  let failures = 0;
  const worker = async () => {
    for (let target = queue.shift(); target; target = queue.shift()) {
      failures += await checkTarget(target, full);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  const total = ((Date.now() - started) / 1000).toFixed(0);
  console.log(
    failures === 0
      ? `mutation check: every mutant killed or not applicable (${total} s)`
      : `mutation check FAILED: ${failures} mutant(s) survived or errored (${total} s)`,
  );
  return failures === 0 ? 0 : 1;
}

process.exitCode = await main();
