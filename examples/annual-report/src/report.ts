// The finished report: a standalone HTML page, with a bar chart drawn in SVG.
import { PRODUCTS, REGIONS, monthName, type MonthSummary } from "./ledger.ts";
import { escapeHtml } from "./html.ts";

const money = (cents: number): string =>
  (cents / 100).toLocaleString("en-US", {
    style: "currency",
    currency: "USD",
    maximumFractionDigits: 0,
  });
const count = (n: number): string => n.toLocaleString("en-US");

function chart(months: readonly MonthSummary[]): string {
  const max = Math.max(...months.map((m) => m.revenueCents), 1);
  const width = 640;
  const height = 180;
  const slot = width / months.length;
  const bars = months
    .map((m, i) => {
      const h = Math.round((m.revenueCents / max) * (height - 30));
      const x = Math.round(i * slot + slot * 0.15);
      return `<rect x="${x}" y="${height - 20 - h}" width="${Math.round(slot * 0.7)}" height="${h}" fill="#2f6fdf"/>
<text x="${Math.round(x + slot * 0.35)}" y="${height - 5}" text-anchor="middle">${monthName(m.month).slice(0, 3)}</text>`;
    })
    .join("\n");
  return `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="Revenue by month" font-size="12" fill="#1d2330">${bars}</svg>`;
}

export function renderReport(
  year: number,
  months: readonly MonthSummary[],
  generatedAt: Date,
): string {
  const sum = (pick: (m: MonthSummary) => number): number =>
    months.reduce((s, m) => s + pick(m), 0);
  const revenue = sum((m) => m.revenueCents);
  const orders = sum((m) => m.orders);
  const best = months.reduce((a, b) => (b.revenueCents > a.revenueCents ? b : a));
  const rows = months
    .map(
      (m) =>
        `<tr><td>${monthName(m.month)}</td><td>${count(m.orders)}</td><td>${count(m.units)}</td><td>${money(m.revenueCents)}</td><td>${money(m.largestOrderCents)}</td></tr>`,
    )
    .join("\n");
  const share = (cents: number): string => `${((cents / revenue) * 100).toFixed(1)}%`;
  const regions = REGIONS.map((r) => {
    const cents = sum((m) => m.revenueByRegion[r]);
    return `<tr><td>${r}</td><td>${money(cents)}</td><td>${share(cents)}</td></tr>`;
  }).join("\n");
  const products = PRODUCTS.map((p) => ({
    name: p.name,
    cents: sum((m) => m.revenueByProduct[p.name] ?? 0),
  }))
    .sort((a, b) => b.cents - a.cents)
    .map(
      (p) =>
        `<tr><td>${escapeHtml(p.name)}</td><td>${money(p.cents)}</td><td>${share(p.cents)}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Annual report ${year}</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  main { max-width: 48rem; margin: 2rem auto; padding: 2rem 2.5rem; background: #fff; border-radius: 12px;
         box-shadow: 0 1px 4px rgb(0 0 0 / 0.08); }
  h1 { margin-top: 0; }
  .figures { display: flex; gap: 2rem; margin: 1rem 0 1.5rem; }
  .figures div { font-size: 1.5rem; font-weight: 700; }
  .figures span { display: block; font-size: 0.85rem; font-weight: 400; color: #5b6472; }
  table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }
  th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #e3e6eb; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .note { color: #5b6472; font-size: 0.85rem; }
</style>
</head>
<body>
<main>
<h1>Annual report ${year}</h1>
<p>Sales of Example Ltd, January to December ${year}.</p>
<div class="figures">
  <div>${money(revenue)}<span>revenue</span></div>
  <div>${count(orders)}<span>orders</span></div>
  <div>${monthName(best.month)}<span>best month</span></div>
</div>
${chart(months)}
<h2>By month</h2>
<table id="months">
<thead><tr><th>Month</th><th>Orders</th><th>Units</th><th>Revenue</th><th>Largest order</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<h2>By region</h2>
<table><thead><tr><th>Region</th><th>Revenue</th><th>Share</th></tr></thead><tbody>
${regions}
</tbody></table>
<h2>By product</h2>
<table><thead><tr><th>Product</th><th>Revenue</th><th>Share</th></tr></thead><tbody>
${products}
</tbody></table>
<p class="note">Generated ${escapeHtml(generatedAt.toISOString())} by a celery-ts worker. <a href="/">Back</a></p>
</main>
</body>
</html>
`;
}
