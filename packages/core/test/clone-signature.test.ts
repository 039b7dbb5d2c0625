import { describe, expect, it } from "vitest";
import { cloneSignature, createSignature, type Signature } from "../src/index.ts";

describe("cloneSignature", () => {
  it("copies deeply: changing the copy leaves the original as it was", () => {
    const original = createSignature(
      "t.add",
      [{ n: [1, 2] }],
      { k: { deep: true } },
      {
        link: [createSignature("t.cb")],
      },
    );
    const copy = cloneSignature(original);
    expect(copy).toEqual(original);
    (copy.args[0] as { n: number[] }).n.push(3);
    (copy.kwargs.k as { deep: boolean }).deep = false;
    (copy.options.link as Signature[])[0]!.task = "changed";
    expect(original.args).toEqual([{ n: [1, 2] }]);
    expect(original.kwargs).toEqual({ k: { deep: true } });
    expect((original.options.link as Signature[])[0]!.task).toBe("t.cb");
  });

  it("keeps what plain copying cannot: dates, holes, cycles, a __proto__ key", () => {
    const when = new Date("2026-01-01T00:00:00Z");
    // eslint-disable-next-line no-sparse-arrays -- the hole is the point
    const holes = [1, , 3];
    const cycle: unknown[] = [];
    cycle.push(cycle);
    const proto = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    // Each on its own: any one of them sends the whole signature to structuredClone.
    const only = <T>(value: T): T => cloneSignature(createSignature("t.x", [value])).args[0] as T;
    const date = only(when);
    expect(date).toBeInstanceOf(Date);
    expect(date).not.toBe(when);
    expect(date.getTime()).toBe(when.getTime());
    expect(1 in only(holes)).toBe(false);
    const cyclic = only(cycle);
    expect(cyclic[0]).toBe(cyclic);
    const keyed = only(proto);
    expect(Object.getPrototypeOf(keyed)).toBe(Object.prototype);
    expect(Object.keys(keyed)).toEqual(["__proto__"]);
  });

  it("refuses functions as structuredClone does", () => {
    expect(() => cloneSignature(createSignature("t.f", [() => 1]))).toThrow();
  });
});
