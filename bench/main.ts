/**
 * `npm run bench` (through bench/run.sh): makes the workload once, runs every benchmark and
 * rewrites bench/RESULTS.md (and bench/results.json with every sample). BENCH_ONLY picks
 * sections (cpio,compress,build,install,preview,boot,rebuild,compression,deploy,layer-deploy,layer-boot,demo-loop); a partial run writes
 * RESULTS.partial.md, or with BENCH_MERGE=1 replaces those sections in RESULTS.md.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { benchWorkload } from "./workload";
import { machineInfo, type Machine } from "./machine";
import { renderResults, type RunInfo } from "./report";
import { benchCpio } from "./cpio-bench";
import { benchCompress } from "./compress-bench";
import { benchBuild } from "./build-bench";
import { benchInstall } from "./install-bench";
import { benchPreview } from "./preview-bench";
import { benchBoot } from "./boot-bench";
import { benchRebuild } from "./rebuild-bench";
import { benchCompression } from "./compression-bench";
import { benchDeploy } from "./deploy-bench";
import { benchDemoLoop } from "./demo-loop-bench";
import { benchLayerBoot } from "./layer-boot-bench";
import { benchLayerDeploy } from "./layer-deploy-bench";
import type { BenchContext, SectionResult } from "./section";

const SECTIONS = [
  "cpio",
  "compress",
  "build",
  "install",
  "preview",
  "boot",
  "rebuild",
  "compression",
  "deploy",
  "layer-deploy",
  "layer-boot",
  "demo-loop",
] as const;
type SectionId = (typeof SECTIONS)[number];

function count(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`${name}=${JSON.stringify(raw)}: expected a whole number >= ${min}`);
  return n;
}

function selected(): SectionId[] {
  const raw = process.env.BENCH_ONLY;
  if (!raw) return [...SECTIONS];
  const ids = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const id of ids)
    if (!SECTIONS.includes(id as SectionId))
      throw new Error(`BENCH_ONLY: "${id}" is not a section; expected some of ${SECTIONS.join(",")}`);
  return ids as SectionId[];
}

/**
 * `npm run bench -- --render`: RESULTS.md again from bench/results.json, the cached workload and
 * the current bench/analysis.md, measuring nothing (for a corrected analysis or layout).
 */
async function render(benchDir: string): Promise<void> {
  const stored = JSON.parse(fs.readFileSync(path.join(benchDir, "results.json"), "utf8")) as {
    info: RunInfo;
    machine: Machine;
    sections: SectionResult[];
  };
  const w = await benchWorkload();
  const analysis = fs.readFileSync(path.join(benchDir, "analysis.md"), "utf8");
  fs.writeFileSync(
    path.join(benchDir, "RESULTS.md"),
    renderResults(stored.info, stored.machine, w, stored.sections, analysis),
  );
}

async function main(): Promise<void> {
  if (process.argv.includes("--render")) return render(path.join(process.cwd(), "bench"));
  const started = Date.now();
  const loadBefore = os.loadavg();
  // bench/run.sh runs this from the repository root, compiled into <out>/bench/main.js.
  const repoRoot = process.cwd();
  const benchDir = path.join(repoRoot, "bench");
  if (!fs.existsSync(path.join(benchDir, "run.sh")))
    throw new Error(`run from the repository root (no bench/run.sh under ${repoRoot}); use npm run bench`);
  const only = selected();
  const ctx: BenchContext = {
    runs: count("BENCH_RUNS", 5),
    heavyRuns: count("BENCH_HEAVY_RUNS", 3),
    scratch: fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-bench-")),
    log: (m) => process.stderr.write(`[bench] ${m}\n`),
  };
  const gzipBuildRuns = count("BENCH_GZIP_BUILD_RUNS", 1, 0);
  const machine = machineInfo({
    "GNU cpio": ["cpio", ["--version"]],
    gzip: ["gzip", ["--version"]],
    pigz: ["pigz", ["--version"]],
    zstd: ["zstd", ["--version"]],
    qemu: ["qemu-system-x86_64", ["--version"]],
    pulumi: ["pulumi", ["version"]],
    zlib: [process.execPath, ["-p", "'zlib ' + process.versions.zlib + ', zstd ' + process.versions.zstd"]],
  });
  try {
    const w = await benchWorkload();
    const sections: SectionResult[] = [];
    const run: Record<SectionId, () => Promise<SectionResult>> = {
      cpio: () => benchCpio(w, ctx),
      compress: () => benchCompress(w, ctx),
      build: () => benchBuild(w, ctx, gzipBuildRuns),
      install: () => benchInstall(w, ctx, repoRoot),
      preview: () => benchPreview(ctx, repoRoot),
      boot: () => benchBoot(w, ctx, repoRoot),
      rebuild: () => benchRebuild(w, ctx),
      compression: () => benchCompression(w, ctx),
      deploy: () => benchDeploy(ctx),
      "layer-deploy": () => benchLayerDeploy(w, ctx),
      "layer-boot": () => benchLayerBoot(w, ctx),
      "demo-loop": () => benchDemoLoop(ctx, repoRoot),
    };
    for (const id of only) {
      const t0 = Date.now();
      sections.push(await run[id]());
      ctx.log(`${id}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
    const partial = only.length !== SECTIONS.length;
    const analysisFile = path.join(benchDir, "analysis.md");
    const analysis = fs.existsSync(analysisFile) ? fs.readFileSync(analysisFile, "utf8") : "";
    const info: RunInfo = {
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      totalSeconds: (Date.now() - started) / 1000,
      runs: ctx.runs,
      heavyRuns: ctx.heavyRuns,
      gzipBuildRuns,
      loadBefore,
      loadAfter: os.loadavg(),
      command: partial ? `BENCH_ONLY=${only.join(",")} npm run bench` : "npm run bench",
    };
    if (partial && process.env.BENCH_MERGE === "1") {
      // The sections measured now replace (or join) those of the last full run in RESULTS.md,
      // each saying when and under what load it was measured.
      const file = path.join(benchDir, "results.json");
      const stored = JSON.parse(fs.readFileSync(file, "utf8")) as {
        info: RunInfo;
        machine: Machine;
        sections: SectionResult[];
      };
      for (const s of sections) {
        s.measured = {
          date: info.date,
          command: `BENCH_MERGE=1 ${info.command}`,
          loadBefore: info.loadBefore,
          loadAfter: info.loadAfter,
        };
        const at = stored.sections.findIndex((old) => old.id === s.id);
        if (at >= 0) stored.sections[at] = s;
        else stored.sections.push(s);
      }
      fs.writeFileSync(file, JSON.stringify(stored, null, 2) + "\n");
      fs.writeFileSync(
        path.join(benchDir, "RESULTS.md"),
        renderResults(stored.info, stored.machine, w, stored.sections, analysis),
      );
      ctx.log(`merged ${only.join(",")} into ${path.join(benchDir, "RESULTS.md")}`);
      return;
    }
    const results = path.join(benchDir, partial ? "RESULTS.partial.md" : "RESULTS.md");
    fs.writeFileSync(results, renderResults(info, machine, w, sections, analysis));
    fs.writeFileSync(
      path.join(benchDir, partial ? "results.partial.json" : "results.json"),
      JSON.stringify({ info, machine, sections }, null, 2) + "\n",
    );
    ctx.log(`wrote ${results}`);
  } finally {
    fs.rmSync(ctx.scratch, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench: ${err instanceof Error ? err.stack : err}`);
  process.exit(1);
});
