// The sales ledger of Example Ltd, a fictional shop: one order a row, generated on the fly from a
// seeded random number generator, so that a month always holds the same orders. Summing them is
// the real work of the report.

/** The ledger's first and last closed months. */
export const LEDGER = { first: { year: 2019, month: 1 }, last: { year: 2026, month: 6 } } as const;

export const REGIONS = ["North", "South", "East", "West"] as const;
export type Region = (typeof REGIONS)[number];
/** Where orders come from: cumulative shares of North, South, East (West is the rest). */
const REGION_CUTS = [0.34, 0.55, 0.84];
/** Orders in each month, relative to an average month: quiet summers, busy Christmases. */
const SEASON = [0.92, 0.85, 0.97, 0.98, 1, 0.93, 0.88, 0.9, 1.02, 1.08, 1.25, 1.4];

export const PRODUCTS = [
  { name: "Cable kit", priceCents: 1_900 },
  { name: "Desk lamp", priceCents: 3_900 },
  { name: "Webcam", priceCents: 6_900 },
  { name: "Monitor arm", priceCents: 7_400 },
  { name: "Keyboard", priceCents: 8_900 },
  { name: "Headset", priceCents: 12_900 },
  { name: "Office chair", priceCents: 18_900 },
  { name: "Standing desk", priceCents: 45_000 },
] as const;

export const MONTH_NAMES = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
] as const;

export const monthName = (month: number): string => MONTH_NAMES[month - 1] ?? `month ${month}`;

export interface MonthSummary {
  year: number;
  month: number;
  orders: number;
  units: number;
  revenueCents: number;
  largestOrderCents: number;
  revenueByRegion: Record<Region, number>;
  /** By product name. */
  revenueByProduct: Record<string, number>;
}

const index = (year: number, month: number): number => year * 12 + (month - 1);

/** Whether the ledger has the month's orders. */
export function hasMonth(year: number, month: number): boolean {
  const at = index(year, month);
  return (
    at >= index(LEDGER.first.year, LEDGER.first.month) &&
    at <= index(LEDGER.last.year, LEDGER.last.month)
  );
}

/** A small, fast, seeded generator (mulberry32): the same seed gives the same ledger. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Reads the month's orders and sums them. `baseOrders` is the volume of January 2019; the shop
 * grows 15% a year, and sells more before Christmas.
 */
export function aggregateMonth(year: number, month: number, baseOrders: number): MonthSummary {
  const random = seeded(index(year, month) * 7919);
  const season = SEASON[month - 1]! * (0.95 + 0.1 * random()); // and a little luck
  const orders = Math.round(baseOrders * 1.15 ** (year - LEDGER.first.year) * season);
  const byRegion = new Float64Array(REGIONS.length);
  const byProduct = new Float64Array(PRODUCTS.length);
  let units = 0;
  let revenue = 0;
  let largest = 0;
  for (let i = 0; i < orders; i++) {
    const product = Math.floor(random() * random() * PRODUCTS.length); // cheap things sell more
    const r = random();
    const region = r < REGION_CUTS[0]! ? 0 : r < REGION_CUTS[1]! ? 1 : r < REGION_CUTS[2]! ? 2 : 3;
    const quantity = 1 + Math.floor(-Math.log(1 - random()) * 1.5); // mostly 1 or 2, now and then 20
    const discount = random() < 0.12 ? 0.85 : 1;
    const amount = Math.round(PRODUCTS[product]!.priceCents * quantity * discount);
    units += quantity;
    revenue += amount;
    byRegion[region]! += amount;
    byProduct[product]! += amount;
    if (amount > largest) largest = amount;
  }
  return {
    year,
    month,
    orders,
    units,
    revenueCents: revenue,
    largestOrderCents: largest,
    revenueByRegion: Object.fromEntries(REGIONS.map((r, i) => [r, byRegion[i]!])) as Record<
      Region,
      number
    >,
    revenueByProduct: Object.fromEntries(PRODUCTS.map((p, i) => [p.name, byProduct[i]!])),
  };
}
