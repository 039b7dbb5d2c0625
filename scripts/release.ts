// `pnpm release`: turns the pending changesets into versions and changelogs (`changeset version`),
// builds every public package and runs `pnpm publish --dry-run` on each: what would be published,
// without publishing. `pnpm release --publish` publishes for real (`changeset publish`: npm
// credentials needed, git tags created). Review and commit the version bump either way.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const publish = process.argv.includes("--publish");
const run = (cmd: string, args: string[]): void => {
  process.stdout.write(`$ ${cmd} ${args.join(" ")}\n`);
  execFileSync(cmd, args, { cwd: root, stdio: "inherit" });
};

const pending = readdirSync(join(root, ".changeset")).filter(
  (file) => file.endsWith(".md") && file !== "README.md",
);
if (pending.length > 0) run("pnpm", ["exec", "changeset", "version"]);
else process.stdout.write("no pending changesets: versions stay as they are\n");

run("pnpm", ["turbo", "run", "build", "--filter=./packages/*", "--output-logs=errors-only"]);
if (publish) {
  run("pnpm", ["exec", "changeset", "publish"]);
} else {
  run("pnpm", ["-r", "--filter=./packages/*", "publish", "--dry-run", "--no-git-checks"]);
  process.stdout.write(
    "dry run: nothing was published. Commit the version bump, then `pnpm release --publish`.\n",
  );
}
