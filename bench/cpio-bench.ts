/**
 * The newc writer alone: ramroot's packer (walk + deterministic newc, no compression) against
 * `find . | cpio -o -H newc` (GNU cpio) over the same unpacked image tree, both writing a file
 * on the same filesystem.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { alternate, roundRatios, timeCommand, timeShell, type Variant } from "./harness";
import type { BenchContext, SectionResult } from "./section";
import { sha256File, type Workload } from "./workload";

export async function benchCpio(w: Workload, ctx: BenchContext): Promise<SectionResult> {
  const dir = path.join(ctx.scratch, "cpio");
  fs.mkdirSync(dir, { recursive: true });
  const packTree = path.join(__dirname, "pack-tree.js");
  const ours = path.join(dir, "ramroot.cpio");
  const gnu = path.join(dir, "gnu.cpio");
  let digest: string | undefined;
  const variants: Variant[] = [
    {
      label: "ramroot newc writer",
      command: `node bench/pack-tree.js TREE OUT none`,
      before: () => fs.rmSync(ours, { force: true }),
      run: () => timeCommand(process.execPath, [packTree, w.tree, ours, "none"], { output: ours }),
      check: () => {
        // Deterministic: every run writes the same bytes.
        const d = sha256File(ours);
        if (digest !== undefined && d !== digest)
          throw new Error(`pack-tree wrote different bytes in two runs (${digest} then ${d})`);
        digest = d;
      },
    },
    {
      label: "GNU cpio",
      command: "cd TREE && find . | cpio -o -H newc --quiet > OUT",
      before: () => fs.rmSync(gnu, { force: true }),
      run: () => timeShell(`find . | cpio -o -H newc --quiet > ${JSON.stringify(gnu)}`, { cwd: w.tree, output: gnu }),
    },
  ];
  ctx.log(`cpio: ${variants.map((v) => v.label).join(" vs ")} over ${w.tree}`);
  const rows = await alternate(variants, ctx.runs, ctx.log);
  // Both archives hold the same paths (GNU cpio's carry a leading "./" and the "." entry).
  const list = (f: string) =>
    execFileSync("cpio", ["-it", "--quiet", "-F", f], { encoding: "utf8", maxBuffer: 64 << 20 })
      .split("\n")
      .filter((l) => l !== "" && l !== ".")
      .map((l) => l.replace(/^\.\//, ""));
  const a = new Set(list(ours));
  const b = list(gnu);
  const missing = b.filter((p) => !a.has(p));
  if (missing.length > 0)
    throw new Error(
      `ramroot's archive lacks ${missing.length} paths GNU cpio packed, e.g. ${missing.slice(0, 3).join(", ")}`,
    );
  return {
    id: "cpio",
    title: "newc writer: ramroot vs GNU cpio",
    intro: `The unpacked image (${w.treeFiles} files, ${(w.treeBytes / 2 ** 20).toFixed(0)} MiB of file data), packed to an uncompressed newc archive; page cache warm after the first round. Both archives list the same ${a.size} paths (checked with \`cpio -it\`); ramroot's is byte-identical run to run (sha256 ${digest}).`,
    tables: [
      {
        caption: "newc, uncompressed",
        baseline: "GNU cpio",
        rows,
        inputBytes: w.treeBytes,
        showBytes: true,
        resourceRatios: true,
        runs: ctx.runs,
      },
    ],
    notes: [
      `Round by round (the two ran one right after the other), ramroot over GNU cpio: wall ${roundRatios(rows, "ramroot newc writer", "GNU cpio", (x) => x.seconds)}, CPU ${roundRatios(rows, "ramroot newc writer", "GNU cpio", (x) => x.cpuSeconds)}. ` +
        "ramroot's CPU includes the SHA-256 of the archive (the layer's hash, taken as it is written) and Node's start; GNU cpio's, `find` and its 512-byte writes.",
    ],
  };
}
