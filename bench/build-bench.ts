/**
 * `ramroot build` of the workload's config, as a user runs it: cold (empty package and image
 * caches; the repository is local), warm with the plan unchanged (the image comes from the
 * cache, re-hashed), and warm with one overlay file changed (packages from the cache, the image
 * rebuilt). Peak memory is the CLI process's peak resident set.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { alternate, timeCommand, type Variant } from "./harness";
import { cliCommand } from "./ramroot-cli";
import type { BenchContext, ResultTable, SectionResult } from "./section";
import type { BenchCompression, Workload } from "./workload";

async function buildVariants(w: Workload, compression: BenchCompression, dir: string): Promise<Variant[]> {
  const config = w.config[compression];
  const home = path.join(dir, `ramroot-cache-${compression}`);
  const images = path.join(home, "images");
  const env = { RAMROOT_CACHE: home };
  const build = () => {
    const [node, args] = cliCommand(["build", config, "--cache", images]);
    return timeCommand(node, args, { env });
  };
  let revision = 0;
  const setOverlay = (value: string) => fs.writeFileSync(w.changingFile, `${value}\n`);
  const expect = (fromCache: boolean) => (s: { stdout?: string }) => {
    const hit = (s.stdout ?? "").includes("from the cache");
    if (hit !== fromCache)
      throw new Error(`ramroot build ${config}: expected ${fromCache ? "a cache hit" : "a build"}, got:\n${s.stdout}`);
  };
  const command = `RAMROOT_CACHE=DIR ramroot build ${path.basename(config)} --cache DIR/images`;
  return [
    {
      label: "cold",
      command: `rm -rf DIR; ${command}`,
      before: () => {
        fs.rmSync(home, { recursive: true, force: true });
        setOverlay("0");
      },
      run: build,
      check: expect(false),
    },
    {
      label: "warm, plan unchanged",
      command,
      before: async () => {
        setOverlay("0");
        await build(); // makes sure the cache holds this plan (a hit when it already does)
      },
      run: build,
      check: expect(true),
    },
    {
      label: "warm, one overlay file changed",
      command: `echo N > root/etc/bench/revision; ${command}`,
      before: async () => {
        setOverlay("0");
        await build(); // packages in the cache
        setOverlay(`changed-${++revision}`);
      },
      run: build,
      check: expect(false),
    },
  ];
}

export async function benchBuild(w: Workload, ctx: BenchContext, gzipRuns: number): Promise<SectionResult> {
  const dir = path.join(ctx.scratch, "build");
  fs.mkdirSync(dir, { recursive: true });
  const tables: ResultTable[] = [];
  try {
    for (const [compression, runs] of [
      ["none", ctx.runs],
      ["gzip", gzipRuns],
    ] as const) {
      if (runs < 1) continue;
      ctx.log(`build: ${path.basename(w.config[compression])}, ${runs} rounds`);
      const rows = await alternate(await buildVariants(w, compression, dir), runs, ctx.log);
      tables.push({
        caption: `${path.basename(w.config[compression])} (compression: ${compression})`,
        baseline: "cold",
        rows,
        runs,
      });
    }
  } finally {
    fs.writeFileSync(w.changingFile, "0\n");
  }
  return {
    id: "build",
    title: "ramroot build: cold and warm",
    intro:
      `The workload's config (${w.packages.join(", ")} + linux-lts with every module; overlay with a service) built with the CLI. ` +
      "The uncompressed config shows ramroot's own work (fetch + verify, scripts, unpack, overlay, pack) over several rounds; " +
      "the gzip config is what a user ships, and its level-9 gzip of the whole image costs minutes on two cores, so it runs fewer rounds (BENCH_GZIP_BUILD_RUNS).",
    tables,
    notes: [],
  };
}
