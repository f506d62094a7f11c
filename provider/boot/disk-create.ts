import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { archInfo, ARCHES, type Arch } from "../arch";
import { execa } from "execa";
import { z } from "zod";
import { renameDurably, tempNameFor } from "../atomic-file";
import {
  blockDeviceAt,
  describeBlockDevice,
  diskAndPartitions,
  partitionNumbers,
  whyInUse,
  type BlockDevice,
} from "./block-device";
import { readFatVolume } from "./fat";
import { sha256File } from "../file-hash";
import { parseInput } from "../input-error";
import { writeMbr } from "./mbr";
import { FAT_EPOCH, mtools, mtoolsEnv } from "./mtools";
import { FieldError, HostError, TargetError } from "../ramroot-error";
import {
  readUkiSigner,
  signUki,
  ukiSignatureRefusal,
  type SecureBootInput,
  type UkiSigner,
} from "../secure-boot-signing";

/** syslinux's MBR boot code: loads the active partition's boot sector. */
export const SYSLINUX_MBR = "/usr/lib/syslinux/mbr/mbr.bin";
/** First partition at 1 MiB, as every partitioning tool aligns it. */
export const PARTITION_START_SECTOR = 2048;

export interface DiskCreateOptions {
  /** image file to write (replaced atomically), or a block device (a whole disk or a partition) to write in place */
  output: string;
  /** an image file's size; on a block device the FAT's size (default: all of it) */
  sizeMiB?: number;
  /**
   * "mbr": syslinux mbr.bin + one active FAT partition at 1 MiB; "superfloppy": FAT from byte 0.
   * Default "mbr", but a partition device always takes the FAT from its first byte ("superfloppy").
   */
  layout?: "mbr" | "superfloppy";
  /**
   * "syslinux" (the default): syslinux on a BIOS FAT partition. "uefi": an EFI system partition
   * (MBR type 0xEF) with systemd-boot as EFI/BOOT/BOOT<arch>.EFI and EFI/systemd/, and loader/.
   */
  scheme?: "syslinux" | "uefi";
  /** with scheme "uefi": whose systemd-boot (default x86_64) */
  arch?: Arch;
  /**
   * with scheme "uefi": systemd-boot signed with this key (PEM text or a PEM file's path each), for
   * firmware with Secure Boot on whose db holds the certificate. The key signs and is gone: only
   * the signed binary is written.
   */
  secureBoot?: SecureBootInput;
  /** slot directories to create, e.g. ["a", "b"] */
  slots: string[];
  /** FAT volume id (32 bits); also the MBR disk signature. Default: a random one, so every disk has its own identity. */
  volumeId?: number;
  /** FAT volume label, up to 11 characters. Default "RAMROOT". */
  label?: string;
  /** FAT type; default: mkfs.fat's choice for the size */
  fatBits?: 12 | 16 | 32;
  /** replace an existing file (it may hold deployed slots); default false: an existing file is refused */
  force?: boolean;
  /** write a block device: it is erased, so only once its model, size and serial were shown (`--yes`) */
  yes?: boolean;
}

export interface DiskCreateResult {
  output: string;
  /** byte offset of the FAT filesystem */
  fatOffset: number;
  fatBits: 12 | 16 | 32;
  /** the FAT serial as blkid shows it (the partition's identity, with the label) */
  volumeId: string;
  label: string;
  /** sha256 of an image file (a block device is not read back whole) */
  sha256?: string;
  /** the block device written: model, size, serial */
  device?: string;
  /** what the user should know afterwards (a partition table the kernel did not re-read, a partition's boot code) */
  notes?: string[];
}

/** MBR partition entries count sectors in 32 bits. */
const MAX_MIB = 2 ** 32 / 2048 - 1;

const optionsSchema = z.strictObject({
  output: z.string().min(1, "expected an image file path or a block device"),
  sizeMiB: z
    .number()
    .int("expected whole MiB")
    .min(8, "expected at least 8 MiB")
    .max(MAX_MIB, `expected at most ${MAX_MIB} MiB (what an MBR partition can hold)`)
    .optional(),
  layout: z.enum(["mbr", "superfloppy"], 'expected "mbr" or "superfloppy"').optional(),
  scheme: z.enum(["syslinux", "uefi"], 'expected "syslinux" or "uefi"').optional(),
  arch: z.enum(ARCHES, `expected one of ${ARCHES.join(", ")}`).optional(),
  secureBoot: z
    .strictObject({
      privateKey: z.string().min(1, "expected the private key's PEM file (--secure-boot-key)"),
      certificate: z.string().min(1, "expected the certificate's PEM file (--secure-boot-cert)"),
    })
    .optional(),
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
  yes: z.boolean().optional(),
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
        ? ` (${cmd} is missing: install ${cmd === "syslinux" ? "syslinux" : cmd.startsWith("mkfs") ? "dosfstools" : cmd === "wipefs" ? "util-linux" : cmd})`
        : "";
    throw new TargetError(`${cmd} ${args.join(" ")} failed${hint}: ${String(result.stderr || result.message).trim()}`);
  }
}

/** How a FAT is laid onto `where` (an image file being made, or a block device). */
interface Layout {
  where: string;
  layout: "mbr" | "superfloppy";
  /** sectors of `where` the disk spans */
  totalSectors: number;
  /** mkfs.fat -I: the target is a whole disk (not a partition) and that is meant */
  wholeDevice: boolean;
  volumeId: number;
  label: string;
  opts: Pick<DiskCreateOptions, "fatBits" | "slots" | "scheme" | "arch">;
  /** with scheme "uefi": signs systemd-boot */
  signer: UkiSigner | undefined;
}

/** mkfs.fat, syslinux, the MBR, the slot directories: the same steps for a new image file and for a device. */
async function layFat(l: Layout): Promise<12 | 16 | 32> {
  const start = l.layout === "mbr" ? PARTITION_START_SECTOR : 0;
  const fatSectors = l.totalSectors - start;
  const mkfs = ["--invariant", "-i", l.volumeId.toString(16).padStart(8, "0"), "-n", l.label];
  if (l.wholeDevice) mkfs.push("-I");
  if (l.opts.fatBits !== undefined) mkfs.push("-F", String(l.opts.fatBits));
  if (start > 0) mkfs.push(`--offset=${start}`, "-h", String(start));
  // mkfs.fat's block count is in KiB.
  await run("mkfs.fat", [...mkfs, l.where, String(Math.floor(fatSectors / 2))]);
  const uefi = l.opts.scheme === "uefi";
  if (!uefi) await run("syslinux", ["--install", ...(start > 0 ? ["--offset", String(start * 512)] : []), l.where]);
  let fatBits: 12 | 16 | 32;
  const fh = await fs.promises.open(l.where, "r+");
  try {
    fatBits = (await readFatVolume(fh, start * 512)).bits;
    if (l.layout === "mbr") {
      const sector0 = Buffer.alloc(512);
      let bootCode = Buffer.alloc(0);
      // UEFI firmware reads the partition table itself: an ESP needs no boot code and no active flag.
      if (!uefi) {
        try {
          bootCode = (await fs.promises.readFile(SYSLINUX_MBR)).subarray(0, 440);
        } catch {
          throw new HostError(`${SYSLINUX_MBR} is missing`, "install Debian's syslinux-common");
        }
      }
      writeMbr(sector0, bootCode, l.volumeId, {
        active: !uefi,
        type: uefi ? ESP_PARTITION_TYPE : PARTITION_TYPE[fatBits],
        start,
        sectors: fatSectors,
      });
      await fh.write(sector0, 0, 512, 0);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (uefi) await installSystemdBoot(l.where, start * 512, l.opts.arch ?? "x86_64", l.signer);
  for (const slot of l.opts.slots) {
    const made = await mtools("mmd", l.where, start * 512, [`::/${slot}`]);
    if (made.exitCode !== 0) throw new TargetError(`creating slot directory ${slot} failed: ${made.stderr.trim()}`);
  }
  const synced = await fs.promises.open(l.where, "r+");
  try {
    await synced.sync();
  } finally {
    await synced.close();
  }
  return fatBits;
}

/** The MBR partition type of an EFI system partition. */
const ESP_PARTITION_TYPE = 0xef;
/** Where Debian's systemd-boot-efi puts systemd-boot and the EFI stubs. */
const SYSTEMD_BOOT_DIR = "/usr/lib/systemd/boot/efi";
/** loader.conf before the first deploy: no default yet (the first switch writes it), no menu, no editor. */
const FIRST_LOADER_CONF = "# written by ramroot: the default entry is what boots\ntimeout 0\neditor no\n";

/**
 * systemd-boot on the new ESP: as EFI/BOOT/BOOT<arch>.EFI (what firmware boots from removable
 * media and from a disk with no boot entry) and as EFI/systemd/, with loader/entries/ and a
 * loader.conf. Copied with its package file's time (mcopy -m), so the same package makes the same bytes.
 * With a signer, the copies are systemd-boot signed by sbsign, dated that same time (so the same
 * package and key make the same bytes) and checked by sbverify against the certificate first.
 */
async function installSystemdBoot(
  where: string,
  fatOffset: number,
  arch: Arch,
  signer: UkiSigner | undefined,
): Promise<void> {
  const info = archInfo(arch).uefi;
  const binary = path.join(SYSTEMD_BOOT_DIR, info.systemdBoot);
  if (!fs.existsSync(binary))
    throw new HostError(
      `scheme: "uefi" needs systemd-boot for ${arch}: ${binary} is missing; install Debian's systemd-boot-efi${arch === "x86_64" ? "" : ` for ${archInfo(arch).debian} (dpkg --add-architecture ${archInfo(arch).debian})`}`,
    );
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-esp-"));
  try {
    const loader = signer ? await signedSystemdBoot(binary, scratch, signer) : binary;
    const conf = path.join(scratch, "loader.conf");
    fs.writeFileSync(conf, FIRST_LOADER_CONF);
    fs.utimesSync(conf, FAT_EPOCH, FAT_EPOCH);
    for (const [cmd, args] of [
      ["mmd", ["::/EFI", "::/EFI/BOOT", "::/EFI/systemd", "::/loader", "::/loader/entries"]],
      ["mcopy", ["-m", loader, `::/EFI/BOOT/${info.bootFile}`]],
      ["mcopy", ["-m", loader, `::/EFI/systemd/${info.systemdBoot}`]],
      ["mcopy", ["-m", conf, "::/loader/loader.conf"]],
    ] as const) {
      const done = await mtools(cmd, where, fatOffset, [...args]);
      if (done.exitCode !== 0)
        throw new TargetError(`${cmd} ${args.join(" ")} on ${where} failed: ${done.stderr.trim()}`);
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/** `binary` signed with `signer` into `dir`, with the package file's time, verified by sbverify. */
async function signedSystemdBoot(binary: string, dir: string, signer: UkiSigner): Promise<string> {
  const signed = path.join(dir, path.basename(binary));
  const mtime = fs.statSync(binary).mtime;
  await signUki(binary, signed, signer, Math.floor(mtime.getTime() / 1000), `systemd-boot (${binary})`);
  const refusal = await ukiSignatureRefusal(signed, signer.certificate);
  if (refusal !== undefined)
    throw new HostError(
      `secureBoot: systemd-boot signed by sbsign does not verify against the certificate: ${refusal}`,
    );
  fs.utimesSync(signed, mtime, mtime);
  return signed;
}

function serialOf(volumeId: number): string {
  const hex = volumeId.toString(16).toUpperCase().padStart(8, "0");
  return `${hex.slice(0, 4)}-${hex.slice(4)}`;
}

/** The key and certificate that sign systemd-boot, read and checked before anything is written. */
function secureBootSigner(opts: DiskCreateOptions): UkiSigner | undefined {
  if (!opts.secureBoot) return undefined;
  if (opts.scheme !== "uefi")
    throw new FieldError(
      "secureBoot",
      `got a key for scheme "${opts.scheme ?? "syslinux"}"; Secure Boot signs systemd-boot on an EFI system partition: expected scheme "uefi" (--scheme uefi)`,
    );
  return readUkiSigner(opts.secureBoot, process.cwd());
}

/**
 * Makes a bootable FAT disk ready for an SD card or USB stick: FAT made with mkfs.fat (the
 * volume id pinned, `--invariant`), syslinux installed with the stock FAT installer, for MBR
 * disks syslinux's mbr.bin in sector 0 and one active partition, and an empty directory per
 * slot. Same options (volumeId included), same bytes. An image file is written to a temporary
 * file and renamed; an existing file is replaced only with `force`. A block device
 * (`/dev/sdb`, `/dev/disk/by-id/...`, or a partition `/dev/sdb1`) is written in place, only
 * with `yes`, and refused while anything uses it (block-device.ts) or when it is too small.
 */
export async function createDisk(input: DiskCreateOptions): Promise<DiskCreateResult> {
  const opts = parseDiskCreateOptions(input);
  const output = path.resolve(opts.output);
  const volumeId = opts.volumeId ?? randomBytes(4).readUInt32LE(0);
  const label = opts.label ?? "RAMROOT";
  const signer = secureBootSigner(opts);
  const device = blockDeviceAt(output);
  if (device) return createOnDevice(opts, device, volumeId, label, signer);
  // A mistyped device name would otherwise become a file of --size MiB in /dev (in RAM).
  if (output.startsWith("/dev/"))
    throw new FieldError(
      "output",
      `${output} is not a block device${fs.existsSync(output) ? "" : " (there is no such device)"}; expected a disk or partition (\`lsblk\` lists them), or an image file outside /dev`,
    );
  if (opts.sizeMiB === undefined)
    throw new FieldError("sizeMiB", `got nothing; expected the size of the image file ${output} in MiB (--size)`);
  if (!opts.force && fs.existsSync(output)) {
    throw new FieldError(
      "output",
      `${output} exists (it may hold deployed slots and their history); expected a new file name, or force (--force) to replace it`,
    );
  }
  const layout = opts.layout ?? "mbr";
  const temp = tempNameFor(output);
  const totalSectors = opts.sizeMiB * 2048;
  const start = layout === "mbr" ? PARTITION_START_SECTOR : 0;
  let fatBits: 12 | 16 | 32;
  try {
    const fh = await fs.promises.open(temp, "wx", 0o644);
    await fh.truncate(totalSectors * 512);
    await fh.close();
    fatBits = await layFat({ where: temp, layout, totalSectors, wholeDevice: false, volumeId, label, opts, signer });
    await renameDurably(temp, output);
  } catch (err) {
    await fs.promises.rm(temp, { force: true });
    throw err;
  }
  return {
    output,
    fatOffset: start * 512,
    fatBits,
    volumeId: serialOf(volumeId),
    label,
    sha256: (await sha256File(output)) as string,
  };
}

/**
 * Has the kernel read the new partition table: BLKRRPART (`blockdev --rereadpt`), and where the
 * kernel parses no MBR itself or did not re-read, `partx --update` (util-linux parses the table
 * and hands the partitions to the kernel). Undefined when partition 1 shows in sysfs; else why not.
 */
async function tellKernelPartitions(device: BlockDevice): Promise<string | undefined> {
  const reread = await execa("blockdev", ["--rereadpt", device.path], { reject: false, stdin: "ignore" });
  if (partitionNumbers(device.disk).includes(1)) return undefined;
  const partx = await execa("partx", ["--update", device.path], { reject: false, stdin: "ignore" });
  if (partitionNumbers(device.disk).includes(1)) return undefined;
  return [reread, partx]
    .map((r) => String(r.stderr).trim() || `${r.command.split(" ")[0]} exited ${r.exitCode}`)
    .join("; ");
}

/** The block device side of createDisk: checked, confirmed, then written in place. */
async function createOnDevice(
  opts: DiskCreateOptions,
  device: BlockDevice,
  volumeId: number,
  label: string,
  signer: UkiSigner | undefined,
): Promise<DiskCreateResult> {
  const shown = describeBlockDevice(device);
  if (device.partition && opts.layout === "mbr")
    throw new FieldError(
      "layout",
      `got "mbr"; ${device.given} is a partition: its FAT starts at its first byte (superfloppy) and the partition table of /dev/${device.disk} stays as it is; name the whole disk for an MBR layout`,
    );
  const layout = device.partition ? "superfloppy" : (opts.layout ?? "mbr");
  const start = layout === "mbr" ? PARTITION_START_SECTOR : 0;
  const deviceMiB = Math.floor(device.sizeBytes / (1 << 20));
  const sizeMiB = Math.min(opts.sizeMiB ?? deviceMiB, MAX_MIB);
  if (deviceMiB < 8 || sizeMiB > deviceMiB)
    throw new FieldError(
      "output",
      `${shown} is too small: ${deviceMiB} MiB, and ${opts.sizeMiB !== undefined ? `--size asks for ${opts.sizeMiB} MiB` : "a boot disk needs at least 8 MiB"}; nothing was written`,
    );
  const use = whyInUse(device.partition ? [device.name] : diskAndPartitions(device), device.path);
  if (use.length > 0)
    throw new FieldError("output", `refusing to write ${shown}: ${use.join("; ")}; nothing was written`);
  if (!opts.yes)
    throw new FieldError(
      "output",
      `${shown} will be erased${device.partition ? "" : " (its partition table and every partition on it)"}: ` +
        "check that this is the device you mean, then run again with --yes; nothing was written",
    );
  const totalSectors = Math.min(Math.floor(device.sizeBytes / 512), sizeMiB * 2048);
  // Old signatures (a GPT's two headers, a filesystem's magic) would make tools see two layouts.
  await run("wipefs", ["--all", "--quiet", device.path]);
  const fatBits = await layFat({
    where: device.path,
    layout,
    totalSectors,
    wholeDevice: !device.partition,
    volumeId,
    label,
    opts,
    signer,
  });
  const notes: string[] = [];
  if (!device.partition) {
    const problem = await tellKernelPartitions(device);
    if (problem !== undefined)
      notes.push(`the kernel does not show the new partition yet (${problem}): unplug and replug the device`);
  } else {
    notes.push(
      `the partition table and boot code of /dev/${device.disk} are as they were: to boot this partition through the BIOS, the disk needs boot code that loads the active partition (such as ${SYSLINUX_MBR}) and partition ${device.partition.number} marked active`,
    );
  }
  return {
    output: device.path,
    fatOffset: start * 512,
    fatBits,
    volumeId: serialOf(volumeId),
    label,
    device: shown,
    ...(notes.length > 0 ? { notes } : {}),
  };
}
