/**
 * QEMU (no KVM) boots to the marker a service prints once init has run: the demo machine's
 * disk through syslinux (a copy of .ramroot/demo/disk.img, as `npm start` deployed it), and
 * the NAS-sized workload image, gzip against zstd, booted directly (-kernel/-initrd), which is
 * where the kernel's decompressor and the unpacking of ~400 MB show.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { bootQemu, logTail, type BootOptions } from "../provider/qemu/boot";
import { alternate, type Variant } from "./harness";
import type { BenchContext, ResultTable, SectionResult } from "./section";
import type { Workload } from "./workload";

const DEMO_MARKER = "RAMROOT-DEMO image=";

function bootVariant(label: string, command: string, opts: () => BootOptions, before?: () => void): Variant {
  return {
    label,
    command,
    before,
    run: async () => {
      const result = await bootQemu(opts());
      if (!result.found)
        throw new Error(
          `${label}: no marker (${result.reason}) after ${result.durationMs} ms:\n${logTail(result.log, 30)}`,
        );
      return { seconds: result.durationMs / 1000 };
    },
  };
}

export async function benchBoot(w: Workload, ctx: BenchContext, repoRoot: string): Promise<SectionResult> {
  const dir = path.join(ctx.scratch, "boot");
  fs.mkdirSync(dir, { recursive: true });
  const tables: ResultTable[] = [];
  const notes: string[] = [];
  const demoDisk = path.join(repoRoot, ".ramroot", "demo", "disk.img");
  if (fs.existsSync(demoDisk)) {
    const disk = path.join(dir, "disk.img");
    const demo = bootVariant(
      "demo disk (syslinux)",
      `qemu-system-x86_64 -m 512 -smp 1 -drive file=disk.img,format=raw,if=ide  # until "${DEMO_MARKER}"`,
      () => ({ media: { kind: "disk", image: disk }, marker: DEMO_MARKER, timeoutMs: 240_000 }),
      () => fs.copyFileSync(demoDisk, disk), // every boot from the deployed bytes
    );
    ctx.log("boot: demo disk");
    tables.push({
      caption: "demo machine, BIOS + syslinux + kernel + init",
      baseline: "demo disk (syslinux)",
      rows: await alternate([demo], ctx.runs, ctx.log),
      runs: ctx.runs,
    });
  } else {
    notes.push(`${demoDisk} does not exist (run \`npm start\` once): the demo boot was not measured.`);
  }
  const nas = (compression: "gzip" | "zstd"): Variant[] => {
    const image = w.images[compression];
    if (!image) {
      notes.push(`No ${compression} NAS image to boot: its build failed (see the workload).`);
      return [];
    }
    return [
      bootVariant(
        `NAS image, ${compression} (${(image.initramfsBytes / 2 ** 20).toFixed(0)} MiB)`,
        `qemu-system-x86_64 -m 2048 -smp 1 -kernel vmlinuz -initrd initramfs.${compression === "gzip" ? "gz" : "zst"} -append "console=ttyS0 rdinit=/sbin/init"  # until "${w.marker}"`,
        () => ({
          media: { kind: "kernel", kernel: image.kernel, initrd: image.initramfs, append: "rdinit=/sbin/init" },
          marker: w.marker,
          memoryMiB: 2048,
          timeoutMs: 600_000,
        }),
      ),
    ];
  };
  ctx.log("boot: NAS image gzip vs zstd");
  const rows = await alternate([...nas("gzip"), ...nas("zstd")], ctx.heavyRuns, ctx.log);
  tables.push({
    caption: "NAS-sized image, kernel + initramfs + init",
    baseline: rows[0]!.label,
    rows,
    runs: ctx.heavyRuns,
  });
  return {
    id: "boot",
    title: "QEMU boot to the marker",
    intro: "QEMU without KVM (TCG), one vCPU, from launch to the marker on the serial console.",
    tables,
    notes,
  };
}
