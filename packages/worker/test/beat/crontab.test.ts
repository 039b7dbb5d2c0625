import { isCeleryTsError } from "@celery-ts/core";
import { describe, expect, it } from "vitest";
import { nextCrontab, parseCrontab, parseEntry } from "../../src/index.ts";

const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();

/** Every tick of `cron` in [from, to), as ISO strings. */
function ticks(spec: string, zone: string, from: string, to: string): string[] {
  const cron = parseCrontab(spec);
  const out: string[] = [];
  let t = Date.parse(from);
  for (;;) {
    const next = nextCrontab(cron, t, zone);
    if (next === undefined || next >= Date.parse(to)) return out;
    out.push(iso(next)!);
    t = next;
  }
}

describe("crontab", () => {
  it("parses five-field strings and Celery's fields alike", () => {
    const a = parseCrontab("*/15 9-17 * * mon-fri");
    const b = parseCrontab({ minute: "*/15", hour: "9-17", day_of_week: "mon-fri" });
    expect(a).toEqual(b);
    expect(a.minutes).toEqual([0, 15, 30, 45]);
    expect(a.hours).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17]);
    expect([...a.daysOfWeek].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(parseCrontab({ minute: 5 }).minutes).toEqual([5]);
    expect([...parseCrontab("0 0 * * 7").daysOfWeek]).toEqual([0]);
    expect([...parseCrontab("0 0 * * fri-mon").daysOfWeek].sort()).toEqual([0, 1, 5, 6]);
    expect([...parseCrontab("0 0 1 jan,jul *").months].sort((x, y) => x - y)).toEqual([1, 7]);
    expect(parseCrontab("1-10/3 * * * *").minutes).toEqual([1, 4, 7, 10]);
  });

  it("refuses bad crontabs with a CONFIG error that says what is wrong", () => {
    const fails = (spec: Parameters<typeof parseCrontab>[0], text: RegExp): void => {
      expect(() => parseCrontab(spec)).toThrow(text);
      try {
        parseCrontab(spec);
      } catch (error) {
        expect(isCeleryTsError(error, "CONFIG")).toBe(true);
      }
    };
    fails("* * * *", /has 4 fields/);
    fails("60 * * * *", /minute "60": 60 is out of range/);
    fails("*/0 * * * *", /bad step/);
    fails({ minute: "x" }, /"x" is not a number/);
    fails({ minutes: "1" } as never, /unknown crontab field "minutes"/);
  });

  it("finds the next matching minute in UTC, across months and years", () => {
    expect(ticks("30 2 * * *", "UTC", "2026-01-30T00:00:00Z", "2026-02-02T00:00:00Z")).toEqual([
      "2026-01-30T02:30:00.000Z",
      "2026-01-31T02:30:00.000Z",
      "2026-02-01T02:30:00.000Z",
    ]);
    expect(
      iso(nextCrontab(parseCrontab("0 12 29 2 *"), Date.parse("2026-03-01T00:00:00Z"), "UTC")),
    ).toBe("2028-02-29T12:00:00.000Z");
    // Day of month AND day of week, as in Celery: the next Friday the 13th.
    expect(
      iso(nextCrontab(parseCrontab("0 0 13 * fri"), Date.parse("2026-01-01T00:00:00Z"), "UTC")),
    ).toBe("2026-02-13T00:00:00.000Z");
    expect(nextCrontab(parseCrontab("0 0 31 2 *"), 0, "UTC")).toBeUndefined();
  });

  it("runs a 02:30 daily task once on the spring-forward day (Europe/Berlin: 02:00 -> 03:00)", () => {
    // 2026-03-29 02:30 does not exist in Berlin: it runs at 03:30 CEST (01:30 UTC), once.
    expect(
      ticks("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", "2026-03-31T12:00:00Z"),
    ).toEqual([
      "2026-03-28T01:30:00.000Z", // 02:30 CET
      "2026-03-29T01:30:00.000Z", // 03:30 CEST: the skipped 02:30, once
      "2026-03-30T00:30:00.000Z", // 02:30 CEST
      "2026-03-31T00:30:00.000Z",
    ]);
  });

  it("runs a 02:30 daily task once on the fall-back day (Europe/Berlin: 03:00 -> 02:00)", () => {
    // 2026-10-25 02:30 happens twice in Berlin (CEST, then CET): it runs at the first only.
    expect(
      ticks("30 2 * * *", "Europe/Berlin", "2026-10-23T12:00:00Z", "2026-10-27T12:00:00Z"),
    ).toEqual([
      "2026-10-24T00:30:00.000Z", // 02:30 CEST
      "2026-10-25T00:30:00.000Z", // the first 02:30 (CEST); not again at 01:30 UTC (CET)
      "2026-10-26T01:30:00.000Z", // 02:30 CET
      "2026-10-27T01:30:00.000Z",
    ]);
  });

  it("handles New York's changes too, and an hourly task through both", () => {
    expect(
      ticks("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z"),
    ).toEqual([
      "2026-03-08T07:30:00.000Z", // 03:30 EDT: the skipped 02:30
      "2026-03-09T06:30:00.000Z", // 02:30 EDT
    ]);
    // Hourly on fall-back day in New York: 01:00 happens twice, runs once; 25 hours, 24 ticks.
    const hourly = ticks(
      "0 * * * *",
      "America/New_York",
      "2026-11-01T03:59:00Z",
      "2026-11-02T05:00:00Z",
    );
    expect(hourly).toHaveLength(24);
    expect(hourly).not.toContain("2026-11-01T06:00:00.000Z"); // the second 01:00 (EST)
    // Hourly on spring-forward day: 02:00 does not exist, 03:00 happens once: 23 ticks.
    const spring = ticks(
      "0 * * * *",
      "America/New_York",
      "2026-03-08T04:59:00Z",
      "2026-03-09T04:00:00Z",
    );
    expect(spring).toHaveLength(23);
    expect(new Set(spring).size).toBe(23);
  });
});

describe("beat entries", () => {
  it("puts every-N ticks on the multiples of N since the epoch", () => {
    const parsed = parseEntry({ name: "e", task: "t", every: 10 });
    expect(parsed.next(Date.parse("2026-01-01T00:00:03Z"))).toBe(
      Date.parse("2026-01-01T00:00:10Z"),
    );
    expect(parsed.next(Date.parse("2026-01-01T00:00:10Z"))).toBe(
      Date.parse("2026-01-01T00:00:20Z"),
    );
    expect(parsed.latest(Date.parse("2026-01-01T00:00:19.9Z"))).toBe(
      Date.parse("2026-01-01T00:00:10Z"),
    );
  });

  it("runs a one-off entry once", () => {
    const parsed = parseEntry({ name: "e", task: "t", at: "2026-05-01T10:00:00+02:00" });
    expect(parsed.next(Number.NEGATIVE_INFINITY)).toBe(Date.parse("2026-05-01T08:00:00Z"));
    expect(parsed.next(Date.parse("2026-05-01T08:00:00Z"))).toBeUndefined();
  });

  it("uses the entry's time zone, else the beat's", () => {
    const inBerlin = parseEntry({ name: "e", task: "t", crontab: "0 9 * * *" }, "Europe/Berlin");
    const inTokyo = parseEntry(
      { name: "e", task: "t", crontab: "0 9 * * *", timezone: "Asia/Tokyo" },
      "Europe/Berlin",
    );
    const from = Date.parse("2026-06-01T00:00:00Z");
    expect(iso(inBerlin.next(from))).toBe("2026-06-01T07:00:00.000Z");
    expect(iso(inTokyo.next(from))).toBe("2026-06-02T00:00:00.000Z");
  });

  it("refuses bad entries, naming the entry and the field", () => {
    const bad = (entry: unknown, text: RegExp): void =>
      expect(() => parseEntry(entry)).toThrow(text);
    bad({ name: "a", task: "t" }, /"a": give exactly one of every/);
    bad({ name: "a", task: "t", every: 1, crontab: "* * * * *" }, /exactly one/);
    bad({ name: "a", task: "t", every: -1 }, /every must be a number of seconds/);
    bad(
      { name: "a", task: "t", every: 1, timezone: "Mars/Olympus" },
      /unknown time zone "Mars\/Olympus"/,
    );
    bad({ name: "a", task: "t", every: 1, options: { queue: 1 } }, /options.queue/);
    bad(
      { name: "a", task: "t", every: 1, options: { routing_key: "x" } },
      /unknown option "routing_key"/,
    );
    bad({ name: "a", task: "t", every: 1, catchUp: "all" }, /catchUp must be "once" or "skip"/);
    bad({ name: "a", task: "t", at: "2026-05-01T10:00:00" }, /needs a zone/);
    bad({ name: "a", task: "t", crontab: "61 * * * *" }, /"a": crontab minute "61"/);
    bad({ name: "a", task: "t", every: 1, extra: true }, /unknown field "extra"/);
    bad({ task: "t", every: 1 }, /name must be/);
  });
});
