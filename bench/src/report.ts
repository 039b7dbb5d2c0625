import { cpus, loadavg, platform, release, totalmem } from "node:os";

/** One table of a report: rows of figures, with columns per system. */
export interface Section {
  title: string;
  /** Column headings after the scenario column. */
  columns: string[];
  rows: { scenario: string; cells: string[] }[];
  notes: string;
}

export function renderReport(sections: Section[], seconds: number): string {
  const load = loadavg()
    .map((n) => n.toFixed(1))
    .join(", ");
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const header = `# Benchmark results

Written by \`pnpm bench\` on ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, in ${Math.round(seconds)} s.
Machine: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${release()}, Node ${process.version}.
Load average at the end (1, 5, 15 min): ${load}. The machine is shared (other sessions run their
tests on it meanwhile) and noisy: peers run side by side in interleaved rounds of one run, so read
the ratios, not the absolute figures.
`;
  const tables = sections.map(
    (s) => `
## ${s.title}

| scenario | ${s.columns.join(" | ")} |
| --- | ${s.columns.map(() => "---").join(" | ")} |
${s.rows.map((r) => `| ${r.scenario} | ${r.cells.join(" | ")} |`).join("\n")}

${s.notes}
`,
  );
  return header + tables.join("");
}
