import {
  MemoryStoreSpace,
  createMemoryStore,
  createMemoryTransport,
  declareTask,
  isCeleryTsError,
} from "@celery-ts/core";
import { createClient } from "../src/index.ts";
import { describe, expect, it } from "vitest";
import { setup } from "./support.ts";

const sendEmail = declareTask<[string, string], void>("u.send_email", {
  unique: { key: (to) => to, ttl: 60 },
});

describe("unique tasks", () => {
  it("returns the first send's handle for a duplicate within the ttl, and queues once", async () => {
    const { client, broker } = setup({ store: createMemoryStore() });
    const first = await client.task(sendEmail).delay("a@example.com", "hello");
    const again = await client.task(sendEmail).delay("a@example.com", "hello again");
    const other = await client.task(sendEmail).delay("b@example.com", "hello");
    expect(again.id).toBe(first.id);
    expect(other.id).not.toBe(first.id);
    expect(broker.purge("celery")).toBe(2);
  });

  it("keys by the arguments when no key is given, and sends again once the ttl is over", async () => {
    const task = declareTask<[number]>("u.by_args", { unique: { ttl: 0.2 } });
    const { client, broker } = setup({ store: createMemoryStore() });
    const a = await client.task(task).delay(1);
    expect((await client.task(task).delay(1)).id).toBe(a.id);
    expect((await client.task(task).delay(2)).id).not.toBe(a.id);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await client.task(task).delay(1)).id).not.toBe(a.id);
    expect(broker.purge("celery")).toBe(3);
  });

  it("debounces with extend: each duplicate restarts the ttl", async () => {
    const task = declareTask<[]>("u.debounce", { unique: { key: "k", ttl: 3, extend: true } });
    const { client } = setup({ store: createMemoryStore() });
    const first = await client.task(task).delay();
    for (let i = 0; i < 4; i++) {
      // 4 × 1 s is past the 3 s ttl: only the extensions keep the first send's key alive. Each
      // step leaves 2 s of slack for a loaded machine.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect((await client.task(task).delay()).id).toBe(first.id);
    }
  }, 20_000);

  it("is shared by producers with the same store, per call options included", async () => {
    const space = new MemoryStoreSpace();
    const one = setup({ store: createMemoryStore({ space }) });
    const two = setup({ store: createMemoryStore({ space }) });
    const opts = { unique: { key: "report-2026-12", ttl: 60 } };
    const a = await one.client.sendTask("u.report", opts);
    const b = await two.client.sendTask("u.report", opts);
    expect(b.id).toBe(a.id);
    // unique: false sends regardless.
    const c = await two.client.task(sendEmail).applyAsync(["a@x", "s"], { unique: false });
    const d = await two.client.task(sendEmail).applyAsync(["a@x", "s"], { unique: false });
    expect(c.id).not.toBe(d.id);
  });

  it("frees the key when the send fails, so the next one is not taken for a duplicate", async () => {
    const store = createMemoryStore();
    const transport = createMemoryTransport();
    const client = createClient({
      broker: { ...transport, publish: () => Promise.reject(new Error("broker down")) },
      store,
      publishRetry: false,
    });
    await expect(client.task(sendEmail).delay("c@x", "s")).rejects.toThrow(/broker down/);
    expect(await store.list("unique:")).toEqual([]);
  });

  it("needs a store when the broker is an object, and refuses a bad ttl", async () => {
    const { client } = setup();
    let error: unknown;
    await client
      .task(sendEmail)
      .delay("a@x", "s")
      .catch((e: unknown) => (error = e));
    expect(isCeleryTsError(error, "CONFIG")).toBe(true);
    expect((error as Error).message).toMatch(/u.send_email is unique, .* give the client a store/);
    const withStore = setup({ store: createMemoryStore() });
    await expect(withStore.client.sendTask("u.x", { unique: { ttl: 0 } })).rejects.toThrow(
      /unique.ttl must be a number of seconds > 0, got 0/,
    );
  });
});
