/**
 * What the compression defaults are chosen from: ramroot's packer at several levels over the
 * sample tree (time and size), then each compression at its default level over the whole
 * workload: a cold `ramroot build` (time, size) and a QEMU boot of what it built (the kernel's
 * decompressor and unpacking at emulated speed).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { bootQemu, logTail } from "../provider/qemu/boot";
import { COMPRESSION_LEVELS } from "../provider/image/compress";
import { alternate, timeCommand, type Variant } from "./harness";
import { sampleTree } from "./compress-bench";
import { cliCommand } from "./ramroot-cli";
import type { BenchContext, ResultTable, SectionResult } from "./section";
import { COMPRESSIONS, type Workload } from "./workload";

const LEVELS: [string, number][] = [
  ["gzip", 1],
  ["gzip", 6],
  ["gzip", 9],
  ["zstd", 3],
  ["zstd", 9],
  ["zstd", 15],
  ["zstd", 19],
];

export async function benchCompression(w: Workload, ctx: BenchContext): Promise<SectionResult> {
  const dir = path.join(ctx.scratch, "compression");
  fs.mkdirSync(dir, { recursive: true });
  const tables: ResultTable[] = [];
  const packTree = path.join(__dirname, "pack-tree.js");

  const sample = sampleTree(w, dir);
  const levelVariants: Variant[] = LEVELS.map(([kind, level]) => {
    const out = path.join(dir, `sample.${kind}${level}`);
    return {
      label: `${kind} -${level}${COMPRESSION_LEVELS[kind as "gzip" | "zstd"].default === level ? " (default)" : ""}`,
      command: `node bench/pack-tree.js TREE OUT ${kind} ${level}`,
      before: () => fs.rmSync(out, { force: true }),
      run: () => timeCommand(process.execPath, [packTree, sample.tree, out, kind, String(level)], { output: out }),
    };
  });
  ctx.log(
    `compression: ${LEVELS.length} levels over the sample (${(sample.bytes / 2 ** 20).toFixed(0)} MiB), ${ctx.heavyRuns} rounds`,
  );
  tables.push({
    caption: `ramroot pack + compress of the sample tree (${sample.files} files, ${(sample.bytes / 2 ** 20).toFixed(0)} MiB) at each level`,
    baseline: "gzip -9",
    rows: await alternate(levelVariants, ctx.heavyRuns, ctx.log),
    inputBytes: sample.bytes,
    showBytes: true,
    runs: ctx.heavyRuns,
  });
  fs.rmSync(sample.tree, { recursive: true, force: true });

  const built: Partial<Record<string, { kernel: string; initramfs: string }>> = {};
  const coldVariants: Variant[] = COMPRESSIONS.map((compression) => {
    const home = path.join(dir, `cache-${compression}`);
    const config = w.config[compression];
    const level = compression === "none" ? "" : ` -${COMPRESSION_LEVELS[compression].default}`;
    return {
      label: `${compression}${level}`,
      command: `rm -rf DIR; RAMROOT_CACHE=DIR ramroot build ${path.basename(config)} --cache DIR/images`,
      before: () => fs.rmSync(home, { recursive: true, force: true }),
      run: async () => {
        const [node, args] = cliCommand(["build", config, "--cache", path.join(home, "images")]);
        const s = await timeCommand(node, args, { env: { RAMROOT_CACHE: home } });
        const initramfs = /^initramfs\s+(\S+)/m.exec(s.stdout)?.[1];
        const kernel = /^kernel\s+(\S+)/m.exec(s.stdout)?.[1];
        if (!initramfs || !kernel)
          throw new Error(`ramroot build ${config} printed no kernel/initramfs line:\n${s.stdout}`);
        const keep = path.join(dir, `initramfs-${compression}`);
        fs.copyFileSync(initramfs, keep);
        fs.copyFileSync(kernel, path.join(dir, "vmlinuz"));
        built[compression] = { kernel: path.join(dir, "vmlinuz"), initramfs: keep };
        return { ...s, bytes: fs.statSync(keep).size };
      },
    };
  });
  ctx.log(`compression: cold builds at the default levels, ${ctx.heavyRuns} rounds`);
  const coldRows = await alternate(coldVariants, ctx.heavyRuns, ctx.log);
  tables.push({
    caption: "cold `ramroot build` of the whole workload at each default level (empty caches)",
    baseline: "none",
    rows: coldRows,
    showBytes: true,
    runs: ctx.heavyRuns,
  });

  const bootVariants: Variant[] = COMPRESSIONS.map((compression) => ({
    label: coldVariants[COMPRESSIONS.indexOf(compression)]!.label,
    command: `qemu-system-x86_64 -m 2048 -smp 1 -kernel vmlinuz -initrd initramfs -append "console=ttyS0 rdinit=/sbin/init"  # until "${w.marker}"`,
    run: async () => {
      const image = built[compression]!;
      const result = await bootQemu({
        media: { kind: "kernel", kernel: image.kernel, initrd: image.initramfs, append: "rdinit=/sbin/init" },
        marker: w.marker,
        memoryMiB: 2048,
        timeoutMs: 900_000,
      });
      if (!result.found)
        throw new Error(
          `${compression}: no marker (${result.reason}) after ${result.durationMs} ms:\n${logTail(result.log, 30)}`,
        );
      return { seconds: result.durationMs / 1000, bytes: fs.statSync(image.initramfs).size };
    },
  }));
  ctx.log(`compression: QEMU boots, ${ctx.heavyRuns} rounds`);
  tables.push({
    caption: "QEMU (TCG, one vCPU) boot to the marker of what each cold build made",
    baseline: "none",
    rows: await alternate(bootVariants, ctx.heavyRuns, ctx.log),
    showBytes: true,
    runs: ctx.heavyRuns,
  });
  return {
    id: "compression",
    title: "Compression at each level, and at the defaults",
    intro:
      "The defaults (provider/image/compress.ts) and the README's table come from here. The Debian kernel booted here unpacks both (test/boot/initramfs-layers.test.ts); gzip needs CONFIG_RD_GZIP, on by default in every kernel config, zstd needs CONFIG_RD_ZSTD (Linux 5.9 and later).",
    tables,
    notes: [],
  };
}
