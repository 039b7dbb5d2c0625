import { describe, expect, it } from "vitest";
import { createSignature, prepareCanvas, unhonourableSignature } from "../src/index.ts";

const sender = { replyTo: "", defaultQueue: "celery" };
const sig = (options: Record<string, unknown>) => createSignature("t.add", [1, 2], {}, options);

describe("signature options celery-ts cannot honour", () => {
  it("accepts what Celery 5.2 puts on a canvas, and producer-only options", () => {
    const celery = sig({
      task_id: "x",
      root_id: "r",
      parent_id: "p",
      group_id: "g",
      group_index: 0,
      reply_to: "oid",
      chord: sig({}),
      link: [sig({})],
      link_error: [sig({})],
      countdown: 1,
      expires: 10,
      queue: "q",
      exchange: "q",
      serializer: "json",
      compression: null,
      add_to_parent: true,
      retry_policy: { max_retries: 3 },
      replaced_task_nesting: 1,
      stamped_headers: ["monitor"],
      monitor: "m-1",
    });
    expect(unhonourableSignature(celery)).toBeUndefined();
  });

  it("names an option it would drop, wherever it is in the canvas", () => {
    const deep = createSignature(
      "celery.group",
      [],
      { tasks: [sig({ link: [sig({ serializer: "pickle" })] })] },
      {},
      { subtaskType: "group" },
    );
    expect(unhonourableSignature(deep)).toMatch(
      /^the signature of t\.add has the option serializer="pickle", which celery-ts cannot honour/,
    );
    expect(unhonourableSignature(sig({ exchange: "topic-exchange", queue: "q" }))).toMatch(
      /option exchange="topic-exchange"/,
    );
    expect(unhonourableSignature(sig({ frobnicate: 1 }))).toMatch(
      /option frobnicate=1, which celery-ts cannot honour \(celery-ts does not know what it asks for\)/,
    );
  });

  it("prepareCanvas refuses such a canvas with a CONFIG error, options of the call included", async () => {
    await expect(prepareCanvas(sig({ compression: "zlib" }), {}, sender)).rejects.toMatchObject({
      code: "CONFIG",
    });
    await expect(
      prepareCanvas(sig({}), { options: { expiration: 30 } }, sender),
    ).rejects.toMatchObject({ code: "CONFIG", message: expect.stringContaining("expiration=30") });
  });

  it("sends reprs, replace nesting and stamps as headers, as Celery does", async () => {
    const { messages } = await prepareCanvas(
      sig({
        argsrepr: "(1, 2)",
        replaced_task_nesting: 2,
        stamped_headers: ["monitor"],
        stamps: { monitor: "m-1" },
        monitor: "m-1",
      }),
      {},
      sender,
    );
    expect(messages[0]?.message.headers).toMatchObject({
      argsrepr: "(1, 2)",
      replaced_task_nesting: 2,
      stamped_headers: ["monitor"],
      stamps: { monitor: "m-1" },
      monitor: "m-1",
    });
  });
});
