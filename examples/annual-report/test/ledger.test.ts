import { describe, expect, it } from "vitest";
import { LEDGER, PRODUCTS, REGIONS, aggregateMonth, hasMonth } from "../src/ledger.ts";
import { renderReport } from "../src/report.ts";

describe("the ledger", () => {
  it("has the months from January 2019 to June 2026", () => {
    expect(LEDGER).toEqual({ first: { year: 2019, month: 1 }, last: { year: 2026, month: 6 } });
    expect(hasMonth(2018, 12)).toBe(false);
    expect(hasMonth(2019, 1)).toBe(true);
    expect(hasMonth(2026, 6)).toBe(true);
    expect(hasMonth(2026, 7)).toBe(false);
  });

  it("sums a month the same way every time, and the parts add up", () => {
    const month = aggregateMonth(2024, 11, 10_000);
    expect(aggregateMonth(2024, 11, 10_000)).toEqual(month);
    expect(month.orders).toBeGreaterThan(10_000); // five years of growth, and Christmas
    const sum = (values: Record<string, number>): number =>
      Object.values(values).reduce((a, b) => a + b, 0);
    expect(Object.keys(month.revenueByRegion)).toEqual([...REGIONS]);
    expect(Object.keys(month.revenueByProduct)).toEqual(PRODUCTS.map((p) => p.name));
    expect(sum(month.revenueByRegion)).toBe(month.revenueCents);
    expect(sum(month.revenueByProduct)).toBe(month.revenueCents);
    expect(month.units).toBeGreaterThanOrEqual(month.orders);
    expect(month.largestOrderCents).toBeLessThanOrEqual(month.revenueCents);
  });

  it("renders a report with a row per month", () => {
    const months = Array.from({ length: 12 }, (_, i) => aggregateMonth(2023, i + 1, 1_000));
    const html = renderReport(2023, months, new Date("2026-01-02T03:04:05Z"));
    expect(html).toContain("<title>Annual report 2023</title>");
    expect(html.match(/<tr><td>[A-Z][a-z]+<\/td><td>[\d,]+<\/td>/g)).toHaveLength(12);
    expect(html).toContain("Generated 2026-01-02T03:04:05.000Z");
  });
});
