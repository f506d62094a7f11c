/**
 * Issue #26 line 6, "its QEMU boot is no slower": the workload's gzip image (~100 MiB, packages +
 * overlay) in two slots of one syslinux disk image, folded (the whole initramfs in `a/initramfs`)
 * and layered (`INITRD /layers/x,/layers/y` from the layer store), booted alternately through
 * QEMU's BIOS and syslinux to the workload's marker. Each boot gets a fresh copy of the disk.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createDisk } from "../provider/boot/disk-create";
import { slotEntry, writeSlot } from "../provider/boot/slot";
import { readSyslinuxConfig, writeSyslinuxConfig } from "../provider/boot/schemes/syslinux/config";
import { withTarget } from "../provider/boot/target";
import { recordedLayersOf } from "../provider/image/build";
import { bootQemu, logTail } from "../provider/qemu/boot";
import { alternate, timeCommand, type Variant } from "./harness";
import { cliCommand } from "./ramroot-cli";
import type { BenchContext, SectionResult } from "./section";
import type { Workload } from "./workload";

const APPEND = "rdinit=/sbin/init console=ttyS0";

export async function benchLayerBoot(w: Workload, ctx: BenchContext): Promise<SectionResult> {
  const dir = path.join(ctx.scratch, "layer-boot");
  fs.mkdirSync(dir, { recursive: true });
  // Built here with `ramroot build` into a cache of its own, which records the image's layers
  // (the workload's images may come from a cache made before layer sizes were recorded).
  ctx.log("layer boot: building the workload's gzip image (not timed)");
  const home = path.join(dir, "cache");
  const [node, args] = cliCommand(["build", w.config.gzip, "--cache", path.join(home, "images")]);
  const built = await timeCommand(node, args, { env: { RAMROOT_CACHE: home } });
  const field = (name: string) => {
    const m = new RegExp(`^${name}\\s+(\\S+)`, "m").exec(built.stdout);
    if (!m) throw new Error(`ramroot build printed no ${name} line:\n${built.stdout}`);
    return m[1]!;
  };
  const image = { kernel: field("kernel"), initramfs: field("initramfs"), imageId: field("imageId") };
  const initramfsBytes = fs.statSync(image.initramfs).size;
  const layers = recordedLayersOf(image.initramfs);
  if (!layers) throw new Error(`${image.initramfs}: the image cache records no layer sizes`);
  const disk = path.join(dir, "disk.img");
  await createDisk({ output: disk, sizeMiB: 512, layout: "mbr", slots: ["a", "b"] });
  const when = "1980-01-01T00:00:00Z";
  ctx.log("layer boot: slot a folded, slot b layered (not timed)");
  await withTarget({ kind: "image", path: disk }, async (target) => {
    await writeSlot(target, {
      slot: "a",
      files: { kernel: image.kernel, initramfs: image.initramfs },
      manifest: { imageId: image.imageId, planId: "folded", when },
    });
    const b = await writeSlot(target, {
      slot: "b",
      files: { kernel: image.kernel, initramfs: image.initramfs },
      layers,
      manifest: { imageId: image.imageId, planId: "layered", when },
    });
    await writeSyslinuxConfig(target, {
      defaultLabel: "a",
      timeout: 0,
      entries: [
        slotEntry("a", { microcode: false, append: APPEND }),
        slotEntry("b", { microcode: false, append: APPEND, layers: b.manifest?.layers }),
      ],
    });
  });
  // One disk per label, differing only in DEFAULT; each boot starts from a fresh copy of its disk.
  const diskOf: Record<string, string> = {};
  for (const label of ["a", "b"]) {
    diskOf[label] = path.join(dir, `disk-${label}.img`);
    fs.copyFileSync(disk, diskOf[label]);
    await withTarget({ kind: "image", path: diskOf[label] }, async (target) => {
      const read = await readSyslinuxConfig(target);
      if (!read) throw new Error(`${diskOf[label]}: no syslinux config`);
      await writeSyslinuxConfig(target, { ...read.spec, defaultLabel: label });
    });
  }
  fs.rmSync(disk);
  const variant = (label: string, what: string): Variant => {
    const run = path.join(dir, `boot-${label}.img`);
    return {
      label: what,
      command: `qemu-system-x86_64 -m 2048 -smp 1 -drive file=disk.img,format=raw,if=ide  # DEFAULT ${label}, until "${w.marker}"`,
      before: () => fs.copyFileSync(diskOf[label]!, run),
      run: async () => {
        const result = await bootQemu({
          media: { kind: "disk", image: run },
          marker: w.marker,
          memoryMiB: 2048,
          timeoutMs: 600_000,
        });
        if (!result.found)
          throw new Error(
            `${what}: no marker (${result.reason}) after ${result.durationMs} ms:\n${logTail(result.log, 30)}`,
          );
        return { seconds: result.durationMs / 1000 };
      },
    };
  };
  const variants = [
    variant("a", `folded: syslinux loads a/initramfs (${(initramfsBytes / 2 ** 20).toFixed(0)} MiB)`),
    variant("b", `layered: syslinux loads the ${layers.length} layers from layers/`),
  ];
  ctx.log(`layer boot: folded and layered alternately, ${ctx.heavyRuns} pairs`);
  const rows = await alternate(variants, ctx.heavyRuns, ctx.log);
  const [folded, layered] = rows;
  const ratio = layered && folded ? layered.medianSeconds / folded.medianSeconds : NaN;
  const line = `QEMU boot of the layered slot: ${ratio.toFixed(2)}x the folded slot's (median ${layered?.medianSeconds.toFixed(1)} s against ${folded?.medianSeconds.toFixed(1)} s, ${ctx.heavyRuns} alternated pairs)`;
  ctx.log(`layer boot: ${line}`);
  return {
    id: "layer-boot",
    title: "QEMU boot of a layered slot beside the folded one",
    intro:
      "The workload's gzip image in slot a as one file and in slot b as its layers in the store, one syslinux disk image; QEMU without KVM (TCG), one vCPU, BIOS + syslinux + kernel + init, from launch to the marker, the two alternated.",
    tables: [
      { caption: "the same image, folded and layered", baseline: variants[0]!.label, rows, runs: ctx.heavyRuns },
    ],
    notes: [
      `**${line}.**`,
      "The layered entry's INITRD names two files where the folded one names one; syslinux reads the same bytes either way.",
    ],
  };
}
