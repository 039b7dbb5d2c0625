// `pnpm start` as a user runs it: one command starts the web server, the worker and the mail
// server, and Ctrl-C (SIGINT) stops all three.
import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";
import { eventually, exampleDir, tempDir } from "./support.ts";

it("runs the whole app from src/main.ts and stops it on SIGINT", async () => {
  const dir = await tempDir("web-feedback-main");
  const main = spawn(process.execPath, [join(exampleDir, "src/main.ts")], {
    env: { ...process.env, PORT: "0", SMTP_PORT: "0", SMTP_REFUSE_FIRST: "1", DATA_DIR: dir.path },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  main.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  main.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => main.on("exit", resolve));
  try {
    const base = await eventually(
      () => /web: listening on (http:\/\/\S+?)\/ /.exec(output)?.[1],
      30_000,
      "the web server",
    );
    const response = await fetch(`${base}/feedback`, {
      method: "POST",
      body: new URLSearchParams({ name: "Ana", email: "ana@example.com", message: "Hi!" }),
      redirect: "manual",
    });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toMatch(/^\/thanks\?id=/);

    const mailbox = join(dir.path, "mailbox");
    const files = await eventually(
      async () => {
        const names = await readdir(mailbox);
        return names.length >= 2 ? names : undefined;
      },
      30_000,
      "two .eml files in the mailbox",
    );
    expect(files.every((name) => name.endsWith(".eml"))).toBe(true);
    expect(output).toContain("refused mail to");
    expect(output).toContain("task will retry at");

    main.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(output).toContain("worker: stopped (exit code 0)");
  } finally {
    main.kill("SIGKILL");
    await dir.remove();
  }
}, 90_000);
