// Proves every public package is publishable: builds it, lints the packed manifest with publint,
// packs it with `pnpm pack`, installs the tarballs into a scratch project outside the workspace,
// and runs a real task through them.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const run = (cmd: string, args: string[], cwd: string): string =>
  execFileSync(cmd, args, { cwd, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });

const packages = readdirSync(join(root, "packages")).filter((dir) => {
  const manifest = JSON.parse(readFileSync(join(root, "packages", dir, "package.json"), "utf8"));
  return manifest.private !== true;
});

run("pnpm", ["turbo", "run", "build", "--output-logs=errors-only"], root);
for (const dir of packages) {
  run("pnpm", ["exec", "publint", "--pack", "pnpm", "--strict"], join(root, "packages", dir));
}
const scratch = mkdtempSync(join(tmpdir(), "celery-ts-pack-"));
try {
  const tarballs: Record<string, string> = {};
  for (const dir of packages) {
    const out = run("pnpm", ["pack", "--pack-destination", scratch], join(root, "packages", dir));
    const tarball = out.trim().split("\n").pop()!.trim();
    const name = JSON.parse(readFileSync(join(root, "packages", dir, "package.json"), "utf8")).name;
    tarballs[name] = `file:${tarball}`;
  }
  writeFileSync(
    join(scratch, "package.json"),
    JSON.stringify({ name: "scratch", private: true, type: "module", dependencies: tarballs }),
  );
  // npm, not pnpm: a user's plain install, with nothing from the workspace to lean on.
  run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], scratch);
  writeFileSync(
    join(scratch, "tasks.js"),
    `import { defineTask } from "@celery-ts/core";
export const add = defineTask("pack.add", (a, b) => a + b);`,
  );
  writeFileSync(
    join(scratch, "check.js"),
    `import { createClient } from "@celery-ts/client";
import { createWorker } from "@celery-ts/worker";
import { transportConformance } from "@celery-ts/testing";
import { add } from "./tasks.js";
if (typeof transportConformance !== "function") throw new Error("@celery-ts/testing did not load");
const url = "sqlite:///pack-check.db";
const worker = createWorker({ broker: url, backend: url, tasks: [add] });
await worker.start();
const client = createClient({ broker: url, backend: url });
const result = await client.task(add).delay(2, 3);
const value = await result.get({ timeout: 20 });
await client.close();
await worker.stop();
if (value !== 5) throw new Error("expected 5, got " + value);
console.log("packed packages work: 2 + 3 =", value);`,
  );
  process.stdout.write(run("node", ["check.js"], scratch));
  process.stdout.write(
    run("npx", ["--no-install", "celery-ts", "--help"], scratch).split("\n")[0] + "\n",
  );
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
