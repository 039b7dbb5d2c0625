import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTaskMessage, encodeTaskMessage } from "@celery-ts/core";
import { createSqliteTransport } from "@celery-ts/sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CliProcess } from "./cli-process.ts";

describe("celery-ts dead-letters", () => {
  let dir: string;
  let url: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "celery-ts-dead-cli-"));
    url = `sqlite:///${join(dir, "queue.db")}`;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function cli(
    ...args: string[]
  ): Promise<{ code: number | null; out: string; err: string }> {
    const run = new CliProcess(["dead-letters", ...args, "--broker", url]);
    const code = await run.exited;
    return { code, out: run.stdout, err: run.stderr };
  }

  it("lists, replays (by task id) and purges the rejected messages", async () => {
    const transport = createSqliteTransport({ path: join(dir, "queue.db") });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const wire = encodeTaskMessage(createTaskMessage({ task: "t", args: [i] }));
      ids.push(wire.headers.id as string);
      await transport.publish(wire, { queue: "celery" });
    }
    const controller = new AbortController();
    let seen = 0;
    await new Promise<void>((resolve) => {
      void transport.consume(
        ["celery"],
        (delivery) => {
          void delivery.reject({ requeue: false, reason: `bad ${seen}` }).then(() => {
            if (++seen === 3) resolve();
          });
        },
        { prefetch: 3, signal: controller.signal },
      );
    });
    controller.abort();

    const listed = await cli("list");
    expect(listed.code, listed.err).toBe(0);
    for (const id of ids) expect(listed.out).toContain(id);
    expect(listed.out).toContain("3 dead letters listed.");
    const json = await cli("list", "--json", "--task-id", ids[1]!);
    expect(JSON.parse(json.out.trim())).toMatchObject({ taskId: ids[1], queue: "celery" });

    expect((await cli("replay", "--task-id", ids[1]!)).err).toMatch(/--force/);
    expect((await cli("replay", "--task-id", ids[1]!, "--force")).out).toContain(
      "1 dead letter replayed.",
    );
    expect(await transport.depth!("celery")).toBe(1);
    expect((await cli("purge", "-f")).out).toContain("2 dead letters purged.");
    expect(await transport.deadLetters!("celery")).toEqual([]);
    await transport.close();
  }, 60_000);
});
