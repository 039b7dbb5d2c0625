// `pnpm start` as a user runs it: one command starts the web server and the worker, and Ctrl-C
// (SIGINT) stops both.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { expect, it } from "vitest";
import type { ReportStatus } from "../src/status.ts";
import { eventually, exampleDir, tempDir } from "./support.ts";

it("runs the whole app from src/main.ts and stops it on SIGINT", async () => {
  const dir = await tempDir("annual-report-main");
  const main = spawn(process.execPath, [join(exampleDir, "src/main.ts")], {
    env: {
      ...process.env,
      PORT: "0",
      DATA_DIR: dir.path,
      WORKER_PROCESSES: "1",
      REPORT_STEP_MS: "50",
      REPORT_BASE_ORDERS: "5000",
    },
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
    const started = await fetch(`${base}/reports`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ year: 2023 }),
    });
    expect(started.status).toBe(202);
    const { id } = (await started.json()) as { id: string };
    const done = await eventually(
      async () => {
        const status = (await (await fetch(`${base}/status/${id}`)).json()) as ReportStatus;
        return status.state === "SUCCESS" || status.state === "FAILURE" ? status : undefined;
      },
      30_000,
      "the report",
    );
    expect(done).toMatchObject({ state: "SUCCESS", url: `/reports/${id}`, year: 2023 });
    const report = await fetch(`${base}${done.url}`);
    expect(report.status).toBe(200);
    expect(await report.text()).toContain("<h1>Annual report 2023</h1>");

    main.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(output).toContain("task succeeded");
    expect(output).toContain("worker: stopped (exit code 0)");
  } finally {
    main.kill("SIGKILL");
    await dir.remove();
  }
}, 90_000);
