import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { z } from "zod";
import { renameDurably, tempNameFor } from "../atomic-file";
import { readFatVolume } from "./fat";
import { sha256File } from "../file-hash";
import { parseInput } from "../input-error";
import { writeMbr } from "./mbr";
import { mtools, mtoolsEnv } from "./mtools";

/** syslinux's MBR boot code: loads the active partition's boot sector. */
export const SYSLINUX_MBR = "/usr/lib/syslinux/mbr/mbr.bin";
/** First partition at 1 MiB, as every partitioning tool aligns it. */
export const PARTITION_START_SECTOR = 2048;

export interface DiskCreateOptions {
  /** image file to write (replaced atomically) */
  output: string;
  sizeMiB: number;
  /** "mbr": syslinux mbr.bin + one active FAT partition at 1 MiB; "superfloppy": FAT from sector 0 */
  layout: "mbr" | "superfloppy";
  /** slot directories to create, e.g. ["a", "b"] */
  slots: string[];
  /** FAT volume id (32 bits); also the MBR disk signature. Default 0x52414d52 ("RAMR"). */
  volumeId?: number;
  /** FAT volume label, up to 11 characters. Default "RAMROOT". */
  label?: string;
  /** FAT type; default: mkfs.fat's choice for the size */
  fatBits?: 12 | 16 | 32;
  /** replace an existing file (it may hold deployed slots); default false: an existing file is refused */
  force?: boolean;
}

export interface DiskCreateResult {
  output: string;
  /** byte offset of the FAT filesystem */
  fatOffset: number;
  fatBits: 12 | 16 | 32;
  sha256: string;
}

const optionsSchema = z.strictObject({
  output: z.string().min(1, "expected an image file path"),
  sizeMiB: z
    .number()
    .int("expected whole MiB")
    .min(8, "expected at least 8 MiB")
    .max(65536, "expected at most 65536 MiB"),
  layout: z.enum(["mbr", "superfloppy"], 'expected "mbr" or "superfloppy"'),
  slots: z
    .array(
      z
        .string()
        .regex(
          /^[a-z0-9][a-z0-9_-]{0,7}$/,
          "expected a slot name of 1-8 lower-case letters, digits, _ or - (a short FAT name)",
        ),
    )
    .min(1, "expected at least one slot, e.g. a,b")
    .refine((s) => new Set(s).size === s.length, "expected distinct slot names"),
  volumeId: z.number().int().min(0, "expected a 32-bit number").max(0xffffffff, "expected a 32-bit number").optional(),
  label: z
    .string()
    .regex(/^[A-Z0-9_-]{1,11}$/, "expected 1-11 upper-case letters, digits, _ or -")
    .optional(),
  fatBits: z.union([z.literal(12), z.literal(16), z.literal(32)], "expected 12, 16 or 32").optional(),
  force: z.boolean().optional(),
});

/** Validates untrusted input (CLI flags) for `createDisk`. */
export function parseDiskCreateOptions(input: unknown): DiskCreateOptions {
  return parseInput(optionsSchema, input, "disk create options");
}

const PARTITION_TYPE = { 12: 0x01, 16: 0x0e, 32: 0x0c } as const;

async function run(cmd: string, args: string[]): Promise<void> {
  const result = await execa(cmd, args, { reject: false, stdin: "ignore", env: mtoolsEnv() });
  if (result.exitCode !== 0) {
    const hint =
      result.code === "ENOENT"
        ? ` (${cmd} is missing: install ${cmd === "syslinux" ? "syslinux" : cmd.startsWith("mkfs") ? "dosfstools" : cmd})`
        : "";
    throw new Error(`${cmd} ${args.join(" ")} failed${hint}: ${String(result.stderr || result.message).trim()}`);
  }
}

/**
 * Makes a bootable FAT disk image ready to write to an SD card or USB stick: FAT made with
 * mkfs.fat (pinned volume id, `--invariant`), syslinux installed with the stock FAT installer,
 * for MBR disks syslinux's mbr.bin in sector 0 and one active partition, and an empty
 * directory per slot. Same options, same bytes. Written to a temporary file and renamed; an
 * existing file is replaced only with `force`.
 */
export async function createDisk(input: DiskCreateOptions): Promise<DiskCreateResult> {
  const opts = parseDiskCreateOptions(input);
  const output = path.resolve(opts.output);
  if (!opts.force && fs.existsSync(output)) {
    throw new Error(
      `output: ${output} exists (it may hold deployed slots and their history); expected a new file name, or force (--force) to replace it`,
    );
  }
  const temp = tempNameFor(output);
  const volumeId = opts.volumeId ?? 0x52414d52;
  const totalSectors = opts.sizeMiB * 2048;
  const start = opts.layout === "mbr" ? PARTITION_START_SECTOR : 0;
  const fatSectors = totalSectors - start;
  let fatBits: 12 | 16 | 32 = 16;
  try {
    const fh = await fs.promises.open(temp, "wx", 0o644);
    await fh.truncate(totalSectors * 512);
    await fh.close();
    const mkfs = ["--invariant", "-i", volumeId.toString(16).padStart(8, "0"), "-n", opts.label ?? "RAMROOT"];
    if (opts.fatBits !== undefined) mkfs.push("-F", String(opts.fatBits));
    if (start > 0) mkfs.push(`--offset=${start}`, "-h", String(start));
    // mkfs.fat's block count is in KiB.
    await run("mkfs.fat", [...mkfs, temp, String(fatSectors / 2)]);
    await run("syslinux", ["--install", ...(start > 0 ? ["--offset", String(start * 512)] : []), temp]);
    const fh2 = await fs.promises.open(temp, "r+");
    try {
      fatBits = (await readFatVolume(fh2, start * 512)).bits;
      if (start > 0) {
        const sector0 = Buffer.alloc(512);
        let bootCode: Buffer;
        try {
          bootCode = (await fs.promises.readFile(SYSLINUX_MBR)).subarray(0, 440);
        } catch {
          throw new Error(`${SYSLINUX_MBR} is missing: install Debian's syslinux-common`);
        }
        writeMbr(sector0, bootCode, volumeId, {
          active: true,
          type: PARTITION_TYPE[fatBits],
          start,
          sectors: fatSectors,
        });
        await fh2.write(sector0, 0, 512, 0);
      }
      await fh2.sync();
    } finally {
      await fh2.close();
    }
    for (const slot of opts.slots) {
      const made = await mtools("mmd", temp, start * 512, [`::/${slot}`]);
      if (made.exitCode !== 0) throw new Error(`creating slot directory ${slot} failed: ${made.stderr.trim()}`);
    }
    await renameDurably(temp, output);
  } catch (err) {
    await fs.promises.rm(temp, { force: true });
    throw err;
  }
  return { output, fatOffset: start * 512, fatBits, sha256: (await sha256File(output)) as string };
}
