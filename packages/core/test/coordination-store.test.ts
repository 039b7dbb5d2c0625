import { describe, expect, it } from "vitest";
import { createMemoryStore, isCeleryTsError, resolveStore } from "../src/index.ts";

describe("resolveStore", () => {
  it("shares one in-process store per memory:// name, each handle closed on its own", async () => {
    const a = await resolveStore("memory://resolve-test");
    const b = await resolveStore("memory://resolve-test");
    const other = await resolveStore("memory://resolve-other");
    expect(await a.setIfAbsent("k", "v")).toBe(true);
    expect(await b.get("k")).toBe("v");
    expect(await other.get("k")).toBeUndefined();
    await a.close();
    expect(await b.get("k")).toBe("v");
  });

  it("passes a store object through", async () => {
    const store = createMemoryStore();
    expect(await resolveStore(store)).toBe(store);
  });

  it("refuses a broker without a store, naming the option to set", async () => {
    for (const url of ["amqp://guest:guest@127.0.0.1:5672//", "sqs://"]) {
      const error = await resolveStore(url).catch((e: unknown) => e);
      expect(isCeleryTsError(error, "CONFIG")).toBe(true);
      expect(String(error)).toMatch(/has no coordination store .*--store redis:\/\//);
    }
  });
});
