/**
 * A block device named as a boot target or as `ramroot disk create`'s output (`/dev/sdb`,
 * `/dev/sdb1`, `/dev/disk/by-id/usb-...`): what it is (disk or partition, size, model, serial)
 * and what uses it. The kernel's own tables are read: /sys/dev/block and /sys/class/block
 * (partitions, holders such as device-mapper, md and LVM), /proc/self/mountinfo, /proc/swaps;
 * lsblk adds the model and serial a person recognises the stick by.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { mountHolding, parseMountInfo, type MountEntry } from "./mountinfo";
import { TargetError } from "../ramroot-error";

export interface BlockDevice {
  /** the path as given (a /dev/disk/by-id link stays one) */
  given: string;
  /** /dev/<name> */
  path: string;
  /** the kernel's name: sdb, sdb1, loop0p1, mmcblk0p1 */
  name: string;
  majorMinor: string;
  sizeBytes: number;
  /** the whole disk's name: the device itself, or the disk a partition is on */
  disk: string;
  /** for a partition: its number and where it starts on the disk */
  partition?: { number: number; startBytes: number };
  model?: string;
  serial?: string;
  /** a loop device's backing file */
  backingFile?: string;
}

const SYS_BLOCK = "/sys/class/block";

function readSys(file: string): string | undefined {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

function majorMinorOf(rdev: bigint): string {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** The kernel's name of the block device numbered `majorMinor`, from /sys/dev/block. */
function nameOf(majorMinor: string): string | undefined {
  try {
    return path.basename(fs.realpathSync(`/sys/dev/block/${majorMinor}`));
  } catch {
    return undefined;
  }
}

/** The model and serial lsblk shows (from sysfs and the udev database), when it can say. */
function identification(devPath: string): { model?: string; serial?: string } {
  try {
    const out = execFileSync("lsblk", ["-J", "-d", "-o", "MODEL,SERIAL,VENDOR", devPath], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const dev = (JSON.parse(out) as { blockdevices?: Record<string, string | null>[] }).blockdevices?.[0] ?? {};
    const model = [dev.vendor, dev.model].map((s) => s?.trim()).filter((s) => s) as string[];
    return {
      ...(model.length > 0 ? { model: model.join(" ") } : {}),
      ...(dev.serial?.trim() ? { serial: dev.serial.trim() } : {}),
    };
  } catch {
    return {};
  }
}

/** The block device at `p`, or undefined when `p` is not one (a file, or nothing). */
export function blockDeviceAt(p: string): BlockDevice | undefined {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(p, { bigint: true });
  } catch {
    return undefined;
  }
  if (!st.isBlockDevice()) return undefined;
  const majorMinor = majorMinorOf(st.rdev);
  const name = nameOf(majorMinor);
  if (name === undefined) throw new TargetError(`${p}: block device ${majorMinor} is not in /sys/dev/block`);
  const sys = path.join(SYS_BLOCK, name);
  const sectors = Number(readSys(path.join(sys, "size")) ?? "0");
  const partNumber = readSys(path.join(sys, "partition"));
  const disk = partNumber !== undefined ? path.basename(path.dirname(fs.realpathSync(sys))) : name;
  const backingFile = readSys(path.join(SYS_BLOCK, disk, "loop", "backing_file"));
  return {
    given: p,
    path: `/dev/${name}`,
    name,
    majorMinor,
    sizeBytes: sectors * 512,
    disk,
    ...(partNumber !== undefined
      ? {
          partition: {
            number: Number(partNumber),
            startBytes: Number(readSys(path.join(sys, "start")) ?? "0") * 512,
          },
        }
      : {}),
    ...identification(`/dev/${disk}`),
    ...(backingFile ? { backingFile } : {}),
  };
}

/** "512.0 MiB", "14.9 GiB" */
function humanSize(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** "/dev/sdb: SanDisk Cruzer Blade, 14.9 GiB (16008609792 bytes), serial 4C53000..." for a person to check before --yes. */
export function describeBlockDevice(dev: BlockDevice): string {
  const what = [
    dev.model ?? "no model reported",
    `${humanSize(dev.sizeBytes)} (${dev.sizeBytes} bytes)`,
    dev.serial !== undefined ? `serial ${dev.serial}` : "no serial reported",
    ...(dev.backingFile !== undefined ? [`loop device of ${dev.backingFile}`] : []),
    ...(dev.partition ? [`partition ${dev.partition.number} of /dev/${dev.disk}`] : []),
  ];
  const shown = dev.given !== dev.path ? `${dev.given} (${dev.path})` : dev.path;
  return `${shown}: ${what.join(", ")}`;
}

/** The partitions of a whole disk, by name. */
function partitionsOf(disk: string): string[] {
  try {
    return fs
      .readdirSync(path.join(SYS_BLOCK, disk))
      .filter((entry) => fs.existsSync(path.join(SYS_BLOCK, disk, entry, "partition")))
      .sort();
  } catch {
    return [];
  }
}

function listSys(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** A holder as a person knows it: dm-0 (vg0-root), md127. */
function holderName(name: string): string {
  const dm = readSys(path.join(SYS_BLOCK, name, "dm", "name"));
  return dm ? `${name} (${dm})` : name;
}

/** The whole disks a device stands on: its own disk, or for device-mapper and md, the disks under them. */
function disksUnder(name: string, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  if (seen.has(name)) return out;
  seen.add(name);
  const slaves = listSys(path.join(SYS_BLOCK, name, "slaves"));
  if (slaves.length > 0) {
    for (const s of slaves) for (const d of disksUnder(s, seen)) out.add(d);
    return out;
  }
  const sys = path.join(SYS_BLOCK, name);
  out.add(fs.existsSync(path.join(sys, "partition")) ? path.basename(path.dirname(fs.realpathSync(sys))) : name);
  return out;
}

function readMounts(): MountEntry[] {
  return parseMountInfo(readSys("/proc/self/mountinfo") ?? "");
}

/** The major:minor of a mount: its device field, or for filesystems that show 0:N (btrfs), its source device's. */
function mountDevice(entry: MountEntry): string | undefined {
  if (!entry.device.startsWith("0:")) return entry.device;
  if (!entry.source.startsWith("/dev/")) return undefined;
  try {
    const st = fs.statSync(entry.source, { bigint: true });
    return st.isBlockDevice() ? majorMinorOf(st.rdev) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What uses the devices `names` (and whatever is built on them): every mount, swap area and
 * holder (device-mapper, md, LVM), and whether one of them is the disk that holds `/` or
 * `/boot` of the running system. Empty when nothing does.
 */
export function devicesInUse(names: readonly string[]): string[] {
  const reasons: string[] = [];
  const all = new Map<string, string>(); // name -> what it is to the caller
  const visit = (name: string, via: string | undefined) => {
    if (all.has(name)) return;
    all.set(name, via ?? name);
    for (const holder of listSys(path.join(SYS_BLOCK, name, "holders"))) {
      reasons.push(`${name} is held by ${holderName(holder)} (device-mapper, md or LVM is using it)`);
      visit(holder, `${holderName(holder)} on ${name}`);
    }
  };
  for (const name of names) visit(name, undefined);
  const byNumber = new Map<string, string>();
  for (const name of all.keys()) {
    const mm = readSys(path.join(SYS_BLOCK, name, "dev"));
    if (mm) byNumber.set(mm, name);
  }
  const mounts = readMounts();
  for (const entry of mounts) {
    const name = byNumber.get(mountDevice(entry) ?? "");
    if (name !== undefined) reasons.push(`${all.get(name)} is mounted at ${entry.mountPoint}`);
  }
  for (const line of (readSys("/proc/swaps") ?? "").split("\n").slice(1)) {
    const file = line.split(/\s+/)[0]?.replace(/\\040/g, " ");
    if (!file) continue;
    try {
      const st = fs.statSync(file, { bigint: true });
      const name = st.isBlockDevice() ? byNumber.get(majorMinorOf(st.rdev)) : undefined;
      if (name !== undefined) reasons.push(`${all.get(name)} is in use as swap`);
    } catch {
      continue;
    }
  }
  const disks = new Set([...all.keys()].flatMap((n) => [...disksUnder(n)]));
  const system = new Map<string, string[]>(); // disk -> the system's directories on it
  for (const dir of ["/", "/boot"]) {
    const held = mountHolding(mounts, dir);
    const mm = held ? mountDevice(held.mount) : undefined;
    const name = mm !== undefined ? nameOf(mm) : undefined;
    if (name === undefined) continue;
    for (const disk of disksUnder(name)) if (disks.has(disk)) system.set(disk, [...(system.get(disk) ?? []), dir]);
  }
  for (const [disk, dirs] of system) reasons.push(`/dev/${disk} holds ${dirs.join(" and ")} of this system`);
  return [...new Set(reasons)];
}

/** The numbers of the partitions the kernel shows for a whole disk now. */
export function partitionNumbers(disk: string): number[] {
  return partitionsOf(disk).map((p) => Number(readSys(path.join(SYS_BLOCK, disk, p, "partition"))));
}

/** The devices that make up a whole disk: the disk and its partitions. */
export function diskAndPartitions(dev: BlockDevice): string[] {
  return [dev.disk, ...partitionsOf(dev.disk)];
}

/**
 * The devices whose bytes a FAT at `fatOffset` of `dev` occupies: the device itself and, for a
 * whole disk, the partition that starts there (the one a mount would name).
 */
export function devicesOfFat(dev: BlockDevice, fatOffset: number): string[] {
  if (dev.partition) return [dev.name];
  const part = partitionsOf(dev.disk).find(
    (p) => Number(readSys(path.join(SYS_BLOCK, p, "start")) ?? "-1") * 512 === fatOffset,
  );
  return [dev.name, ...(part ? [part] : [])];
}

/**
 * Whether the kernel lets this process claim the device exclusively (open with O_EXCL): it
 * refuses (EBUSY) while a filesystem is mounted from it, it is swap, or a driver holds it. A
 * second opinion beside `devicesInUse`, from the kernel itself.
 */
function kernelSaysBusy(devPath: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(devPath, fs.constants.O_RDONLY | fs.constants.O_EXCL);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EBUSY";
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * What uses the devices `names` (devicesInUse), and when nothing is found there, whether the
 * kernel still refuses this process an exclusive claim of `claim` (a /dev path): the reasons a
 * write must be refused; empty when there are none. A whole disk is claimed only when all of it
 * is written (a mounted partition claims its disk too).
 */
export function whyInUse(names: readonly string[], claim?: string): string[] {
  const reasons = devicesInUse(names);
  if (reasons.length === 0 && claim !== undefined && kernelSaysBusy(claim))
    reasons.push(`the kernel reports ${claim} busy (an exclusive open was refused)`);
  return reasons;
}
