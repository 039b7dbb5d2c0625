// Stops with one line when this Node is too old for celery-ts (its .ts sources run directly, which
// needs Node's type stripping: on by default from Node 22.18). Plain CommonJS that any Node can
// parse, run before the demo, the tests and the examples.
"use strict";
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  // The same command through ./dev (at the repository root), which fetches Node 24 and pnpm.
  const script = process.env.npm_lifecycle_event || "<command>";
  const name = process.env.npm_package_name;
  const command =
    name && name !== "celery-ts-monorepo" ? `./dev --filter ${name} ${script}` : `./dev ${script}`;
  process.stderr.write(
    `celery-ts needs Node >= 22.18 (this is Node ${process.versions.node}): run ${command} at ` +
      "the repository root, which fetches Node 24 and pnpm, or install Node 24\n",
  );
  process.exit(1);
}
