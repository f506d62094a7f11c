/** RESULTS.md from a run: machine, workload, one section per benchmark, then the analysis. */
import type { Machine } from "./machine";
import type { ResultTable, SectionResult } from "./section";
import type { Workload } from "./workload";

export interface RunInfo {
  date: string;
  totalSeconds: number;
  runs: number;
  heavyRuns: number;
  gzipBuildRuns: number;
  loadBefore: number[];
  loadAfter: number[];
  command: string;
}

const mibs = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const secs = (s: number) => (s >= 100 ? s.toFixed(0) : s >= 10 ? s.toFixed(1) : s.toFixed(2));

/** A table cell: "|" (as in `find | cpio`) would end the cell. */
const cell = (text: string) => text.replace(/\|/g, "\\|");

function table(t: ResultTable): string {
  const base = t.rows.find((r) => r.label === t.baseline);
  const head = ["variant", "median s", `time vs ${t.baseline}`];
  if (t.inputBytes) head.push("MiB/s in");
  if (t.showBytes) head.push("output");
  const cpu = t.rows.some((r) => r.medianCpuSeconds !== undefined);
  if (cpu) head.push("CPU s");
  if (cpu && t.resourceRatios) head.push(`CPU vs ${t.baseline}`);
  head.push("peak RSS");
  if (t.resourceRatios) head.push(`peak vs ${t.baseline}`);
  head.push("all runs (s)");
  const ratio = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : "-";
  const lines = [`| ${head.map(cell).join(" | ")} |`, `|${head.map(() => " --- ").join("|")}|`];
  for (const r of t.rows) {
    const cells = [
      r.label,
      secs(r.medianSeconds),
      base ? `${(r.medianSeconds / base.medianSeconds).toFixed(2)}x` : "-",
    ];
    if (t.inputBytes) cells.push((t.inputBytes / 2 ** 20 / r.medianSeconds).toFixed(1));
    if (t.showBytes) cells.push(r.bytes !== undefined ? mibs(r.bytes) : "-");
    if (cpu) cells.push(r.medianCpuSeconds !== undefined ? secs(r.medianCpuSeconds) : "-");
    if (cpu && t.resourceRatios) cells.push(ratio(r.medianCpuSeconds, base?.medianCpuSeconds));
    cells.push(r.medianPeakKiB !== undefined ? `${(r.medianPeakKiB / 1024).toFixed(0)} MiB` : "-");
    if (t.resourceRatios) cells.push(ratio(r.medianPeakKiB, base?.medianPeakKiB));
    cells.push(r.samples.map((s) => secs(s.seconds)).join(", "));
    lines.push(`| ${cells.map(cell).join(" | ")} |`);
  }
  return lines.join("\n");
}

export function renderResults(
  run: RunInfo,
  machine: Machine,
  w: Workload,
  sections: SectionResult[],
  analysis: string,
): string {
  const out: string[] = [];
  out.push("# ramroot benchmarks", "");
  out.push(
    `Written by \`${run.command}\` on ${run.date}; the whole run took ${(run.totalSeconds / 60).toFixed(1)} min. ` +
      `Every comparison runs its variants alternately in one process (round i starts with variant i), ` +
      `${run.runs} rounds (BENCH_RUNS), ${run.heavyRuns} for the multi-minute ones (BENCH_HEAVY_RUNS), ${run.gzipBuildRuns} for the gzip build (BENCH_GZIP_BUILD_RUNS); ` +
      "the tables give medians, and ratios of medians against the named baseline (below 1: faster than it). Peak RSS is GNU time's maximum resident set of the largest process. " +
      "No benchmark is part of the test suite.",
    "",
  );
  out.push("## Machine", "");
  out.push(
    `- CPU: ${machine.cpu}, ${machine.cores} cores; ${machine.memoryGiB} GiB RAM; ${machine.kernel}; KVM: ${machine.kvm ? "yes (not used)" : "no"}`,
  );
  out.push(
    `- Node ${machine.node}; ${Object.entries(machine.tools)
      .map(([k, v]) => `${k}: ${v}`)
      .join("; ")}`,
  );
  out.push(
    `- Load average (1/5/15 min) at the start ${run.loadBefore.map((l) => l.toFixed(2)).join("/")}, at the end ${run.loadAfter.map((l) => l.toFixed(2)).join("/")}: other jobs on the machine show up here.`,
    "",
  );
  out.push("## Workload", "");
  out.push(
    `A signed local repository built with \`ramroot pkg build\` + \`ramroot repo index\` (bench/workload.ts, on top of test/fixtures/image-repo.ts): ` +
      `Debian's busybox-static with its applet links, the base layout (a pre-install adds a user), an init package, \`bench-data\` (300 small files) ` +
      `and linux-lts with the Debian kernel and its full module tree. The config asks for ${w.packages.join(", ")} + kernel lts, with an overlay of 42 files and a service. ` +
      `Unpacked image: ${w.treeFiles} files, ${mibs(w.treeBytes)} of file data. Images: ` +
      `gzip ${mibs(w.images.gzip.initramfsBytes)}, zstd ${w.images.zstd ? mibs(w.images.zstd.initramfsBytes) : "FAILED to build"}, uncompressed ${mibs(w.images.none.initramfsBytes)}.`,
    "",
  );
  for (const [compression, error] of Object.entries(w.buildErrors)) {
    out.push(
      `**\`ramroot build\` with compression ${compression} failed on this workload:**`,
      "",
      "```",
      error
        .split("\n")
        .filter((l) => !l.startsWith("[ramroot]"))
        .slice(-14)
        .join("\n"),
      "```",
      "",
    );
  }
  for (const s of sections) {
    out.push(`## ${s.title}`, "", s.intro, "");
    if (s.measured) {
      const load = (l: number[]) => l.map((x) => x.toFixed(2)).join("/");
      out.push(
        `Measured on ${s.measured.date} by \`${s.measured.command}\` (merged into this file), load average ${load(s.measured.loadBefore)} at the start and ${load(s.measured.loadAfter)} at the end.`,
        "",
      );
    }
    for (const t of s.tables) {
      out.push(`**${t.caption}** (${t.runs} rounds)`, "", table(t), "");
      out.push("Commands (TREE, OUT, DIR are scratch paths):", "");
      for (const r of t.rows) out.push(`- ${r.label}: \`${r.command}\``);
      out.push("");
    }
    for (const n of s.notes) out.push(`- ${n}`);
    if (s.notes.length > 0) out.push("");
  }
  if (analysis.trim() !== "") out.push(analysis.trim(), "");
  return out.join("\n");
}
