import { expect, it } from "vitest";
import { spawnCollecting, waitUntil } from "../src/index.ts";

const node = (script: string) => spawnCollecting(process.execPath, ["-e", script]);

it("collects stdout and stderr, in order and apart, and resolves with the exit code", async () => {
  const child = node(
    "process.stdout.write('out 1\\n'); setTimeout(() => { process.stderr.write('err 2\\n'); process.exit(3); }, 50)",
  );
  const exit = await child.exited;
  expect(exit).toMatchObject({ code: 3, signal: null, stdout: "out 1\n", stderr: "err 2\n" });
  expect(exit.output).toBe("out 1\nerr 2\n");
  expect(child.running).toBe(false);
});

it("waits for output, then stops the child with a signal", async () => {
  const child = node("console.log('ready on 4711'); setInterval(() => {}, 1000)");
  const match = await child.waitForOutput(/ready on (\d+)/, 30_000);
  expect(match[1]).toBe("4711");
  expect(await child.stop()).toMatchObject({ code: null, signal: "SIGTERM" });
  // Again, on an exited child: the same ending.
  expect(await child.stop()).toMatchObject({ signal: "SIGTERM" });
});

it("kills a child that ignores SIGTERM after the grace period", async () => {
  const child = node(
    "process.on('SIGTERM', () => console.log('ignored')); console.log('up'); setInterval(() => {}, 1000)",
  );
  await child.waitForOutput("up", 30_000);
  expect(await child.stop("SIGTERM", 200)).toMatchObject({ signal: "SIGKILL" });
});

it("kills a child still running after timeoutMs", async () => {
  const child = spawnCollecting(process.execPath, ["-e", "setInterval(() => {}, 1000)"], {
    timeoutMs: 200,
  });
  expect(await child.exited).toMatchObject({ code: null, signal: "SIGKILL" });
});

it("says what it waited for when the child exits without printing it", async () => {
  const child = node("console.log('something else')");
  await expect(child.waitForOutput("never", 30_000)).rejects.toThrow(
    /to print \/never\/, but it exited first; it printed:\nsomething else/,
  );
});

it("resolves with the error of a command that cannot start", async () => {
  const exit = await spawnCollecting("/nonexistent/celery-ts-command", []).exited;
  expect(exit.code).toBeNull();
  expect(exit.error?.message).toMatch(/ENOENT/);
});

it("waitUntil returns the value as soon as there is one, and names what it waited for", async () => {
  let n = 0;
  expect(await waitUntil(() => ++n >= 3 && n, { timeoutMs: 5_000, what: "three" })).toBe(3);
  await expect(waitUntil(() => false, { timeoutMs: 50, what: "nothing" })).rejects.toThrow(
    /timed out after 50 ms waiting for nothing/,
  );
});
