import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { bootQemu, logTail } from "../../provider/qemu/boot";
import { samePartition } from "../../provider/boot/target-identity";
import { ramroot } from "../fixtures/debian-repo";
import { debianKernel } from "../fixtures/debian-kernel";
import { makeBusyboxInitramfs, markerInit } from "../fixtures/busybox-initramfs";
import { step } from "../fixtures/scenario-step";

// Block devices as boot targets and as `ramroot disk create`'s output, on loop devices (root and
// the loop driver: the test fails when `losetup` cannot attach one) and against this machine's
// own disks. The kernel here has no vfat and no device-mapper: a mounted partition is an ext4
// one, and a holder (dm, md, LVM) cannot be made.
jest.setTimeout(600_000);

let dir: string;
const loops: string[] = [];
const mounts: string[] = [];
const swaps: string[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-blockdev-"));
});
afterAll(() => {
  for (const m of mounts) execFileSync("umount", [m], { stdio: "ignore" });
  for (const s of swaps) execFileSync("swapoff", [s], { stdio: "ignore" });
  for (const l of loops) execFileSync("losetup", ["-d", l], { stdio: "ignore" });
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A new zeroed file of `mib` MiB attached to a free loop device that scans partitions. */
function loopDevice(name: string, mib: number): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, "");
  fs.truncateSync(file, mib << 20);
  const dev = execFileSync("losetup", ["-f", "--show", "-P", file], { encoding: "utf8" }).trim();
  loops.push(dev);
  return dev;
}

/** What blkid reads from a device now (UUID, LABEL, TYPE), through a cache it is told to forget. */
function blkid(dev: string): Record<string, string> {
  execFileSync("blockdev", ["--flushbufs", dev]);
  const out = execFileSync("blkid", ["-p", "-o", "export", dev], { encoding: "utf8" });
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((l) => l.split("=", 2) as [string, string]),
  );
}

function firstBytes(dev: string, length: number): Buffer {
  const fd = fs.openSync(dev, "r");
  try {
    const buf = Buffer.alloc(length);
    fs.readSync(fd, buf, 0, length, 0);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** An MBR with these partitions (the classic layout: 16-byte entries at 446, 0x55AA), told to the kernel with partx. */
function writePartitionTable(dev: string, parts: { active: boolean; type: number; start: number; sectors: number }[]) {
  const sector = Buffer.alloc(512);
  parts.forEach((p, i) => {
    const at = 446 + i * 16;
    sector[at] = p.active ? 0x80 : 0;
    sector[at + 4] = p.type;
    sector.writeUInt32LE(p.start, at + 8);
    sector.writeUInt32LE(p.sectors, at + 12);
  });
  sector.writeUInt16LE(0xaa55, 510);
  const fd = fs.openSync(dev, "r+");
  try {
    fs.writeSync(fd, sector, 0, 512, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  execFileSync("partx", ["--update", dev]);
}

/** Waits for the kernel to show a partition node (udev may take a moment after a re-read). */
async function partitionNode(dev: string, n: number): Promise<string> {
  const node = `${dev}p${n}`;
  for (let i = 0; i < 50 && !fs.existsSync(node); i++) await new Promise((r) => setTimeout(r, 100));
  if (!fs.existsSync(node)) throw new Error(`${node} did not appear after the partition table was written`);
  return node;
}

test("a whole disk: disk create shows the device and wants --yes, refuses a size it lacks, then lays MBR + FAT + syslinux; the image target deploys onto it; it boots in QEMU; its partition node is the same partition", async () => {
  const dev = loopDevice("stick.img", 64);
  const backing = path.join(dir, "stick.img");

  await step(
    "without --yes: the model, size and serial (a loop device: its file) are shown, nothing is written",
    async () => {
      const refused = ramroot("disk", "create", dev);
      await expect(refused).rejects.toThrow(
        new RegExp(
          `${dev}: no model reported, 64\\.0 MiB \\(67108864 bytes\\), no serial reported, loop device of ${backing}`,
        ),
      );
      await expect(refused).rejects.toThrow(/will be erased .*run again with --yes; nothing was written/);
      expect(firstBytes(dev, 1 << 20).every((b) => b === 0)).toBe(true);
    },
  );

  await step("a --size larger than the device is refused", async () => {
    await expect(ramroot("disk", "create", "--yes", "--size", "128", dev)).rejects.toThrow(
      /is too small: 64 MiB, and --size asks for 128 MiB; nothing was written/,
    );
  });

  await step(
    "with --yes: MBR, an active FAT partition at 1 MiB, syslinux, slots a and b; the kernel sees the partition",
    async () => {
      const created = JSON.parse(await ramroot("disk", "create", "--yes", "--volume-id", "1234abcd", dev));
      expect(created).toMatchObject({ output: dev, fatOffset: 1048576, volumeId: "1234-ABCD", label: "RAMROOT" });
      expect(created.device).toContain(`loop device of ${backing}`);
      expect(created.notes).toBeUndefined(); // the kernel re-read the partition table
      const sector0 = firstBytes(dev, 512);
      expect(sector0.subarray(0, 64).equals(fs.readFileSync("/usr/lib/syslinux/mbr/mbr.bin").subarray(0, 64))).toBe(
        true,
      );
      const part = await partitionNode(dev, 1);
      expect(blkid(part)).toMatchObject({ TYPE: "vfat", UUID: "1234-ABCD", LABEL: "RAMROOT" });
      expect(JSON.parse(await ramroot("slot", "show", "--image", dev, "--slot", "a"))).toMatchObject({ slot: "a" });
    },
  );

  await step(
    "the image target writes a slot and the config on the device; QEMU boots the device through syslinux",
    async () => {
      const kernel = debianKernel();
      const initramfs = makeBusyboxInitramfs({
        init: markerInit("BLOCK-DEVICE-SLOT-A"),
        output: path.join(dir, "a.cpio.gz"),
      });
      await ramroot(
        "slot",
        "write",
        "--image",
        dev,
        "--slot",
        "a",
        "--kernel",
        kernel.vmlinuz,
        "--initramfs",
        initramfs,
      );
      await ramroot(
        "syslinux",
        "write",
        "--image",
        dev,
        "--default",
        "a",
        "--slots",
        "a",
        "--append",
        "rdinit=/sbin/init console=ttyS0 no_timer_check panic=5 quiet",
      );
      const result = await bootQemu({
        media: { kind: "disk", image: dev },
        marker: "BLOCK-DEVICE-SLOT-A",
        timeoutMs: 300_000,
      });
      if (!result.found) throw new Error(`the device did not boot slot a:\n${logTail(result.log, 30)}`);
    },
  );

  await step("the partition node reads the same slot, and is the same partition as the disk", async () => {
    const part = await partitionNode(dev, 1);
    const viaDisk = JSON.parse(await ramroot("slot", "show", "--image", dev, "--slot", "a"));
    const viaPart = JSON.parse(await ramroot("slot", "show", "--image", part, "--slot", "a"));
    expect(viaPart.files).toEqual(viaDisk.files);
    expect(await samePartition({ target: { kind: "image", path: dev } }, { kind: "image", path: part })).toBe(true);
    // The file behind the loop device is the same partition too: its bytes are.
    expect(await samePartition({ target: { kind: "image", path: dev } }, { kind: "image", path: backing })).toBe(true);
  });
});

test("refusals: a mounted partition, swap, a device too small, and this machine's own disk", async () => {
  const dev = loopDevice("two-parts.img", 96);
  // A stick someone partitioned: a FAT partition for booting (32 MiB at 1 MiB), an ext4 one for data.
  writePartitionTable(dev, [
    { active: true, type: 0x0c, start: 2048, sectors: 32 * 2048 },
    { active: false, type: 0x83, start: 33 * 2048, sectors: 63 * 2048 },
  ]);
  const boot = await partitionNode(dev, 1);
  const data = await partitionNode(dev, 2);

  await step("a partition takes the FAT from its first byte; an MBR layout on it is refused", async () => {
    await expect(ramroot("disk", "create", "--yes", "--layout", "mbr", boot)).rejects.toThrow(
      /layout: got "mbr"; .* is a partition: its FAT starts at its first byte/,
    );
    const created = JSON.parse(await ramroot("disk", "create", "--yes", boot));
    expect(created).toMatchObject({ output: boot, fatOffset: 0 });
    expect(created.notes.join("\n")).toMatch(/partition table and boot code of .* are as they were/);
    expect(blkid(boot)).toMatchObject({ TYPE: "vfat", UUID: created.volumeId });
  });

  const mountPoint = path.join(dir, "data");
  fs.mkdirSync(mountPoint);
  execFileSync("mkfs.ext4", ["-q", "-F", data]);
  execFileSync("mount", [data, mountPoint]);
  mounts.push(mountPoint);

  await step(
    "with a partition mounted: disk create on the disk is refused naming the mount; the mounted partition as image target is refused",
    async () => {
      const before = blkid(boot);
      await expect(ramroot("disk", "create", "--yes", dev)).rejects.toThrow(
        new RegExp(
          `refusing to write ${dev}: .*${path.basename(data)} is mounted at ${mountPoint}.*; nothing was written`,
        ),
      );
      expect(blkid(boot)).toEqual(before);
      await expect(ramroot("slot", "show", "--image", dev, "--partition", "2", "--slot", "a")).rejects.toThrow(
        new RegExp(`boot target path: ${dev}: .* is in use \\(${path.basename(data)} is mounted at ${mountPoint}\\)`),
      );
      // The FAT partition itself is not mounted: it is a target, through the disk or its own node.
      expect(JSON.parse(await ramroot("slot", "show", "--image", dev, "--slot", "a"))).toMatchObject({ empty: true });
      expect(JSON.parse(await ramroot("slot", "show", "--image", boot, "--slot", "a"))).toMatchObject({ empty: true });
    },
  );

  execFileSync("umount", [mountPoint]);
  mounts.pop();

  await step("a partition in use as swap: disk create on the disk is refused", async () => {
    execFileSync("mkswap", ["-q", data]);
    execFileSync("swapon", [data]);
    swaps.push(data);
    await expect(ramroot("disk", "create", "--yes", dev)).rejects.toThrow(
      new RegExp(`${path.basename(data)} is in use as swap`),
    );
    execFileSync("swapoff", [data]);
    swaps.pop();
  });

  await step("a device name that is no device is refused (no file is made in /dev)", async () => {
    await expect(ramroot("disk", "create", "--yes", "--size", "8", "/dev/ramroot-no-such-disk")).rejects.toThrow(
      /output: \/dev\/ramroot-no-such-disk is not a block device \(there is no such device\)/,
    );
    expect(fs.existsSync("/dev/ramroot-no-such-disk")).toBe(false);
  });

  await step("a device smaller than a boot disk is refused", async () => {
    const tiny = loopDevice("tiny.img", 4);
    await expect(ramroot("disk", "create", "--yes", tiny)).rejects.toThrow(
      /is too small: 4 MiB, and a boot disk needs at least 8 MiB/,
    );
  });

  await step("the disk that holds this machine's / is refused, by disk create and as an image target", async () => {
    const rootDevice = execFileSync("findmnt", ["-n", "-o", "SOURCE", "/"], { encoding: "utf8" }).trim();
    expect(rootDevice).toMatch(/^\/dev\//);
    const disk = `/dev/${execFileSync("lsblk", ["-n", "-d", "-o", "PKNAME", rootDevice], { encoding: "utf8" }).trim() || path.basename(rootDevice)}`;
    const refusal = ramroot("disk", "create", "--yes", disk);
    await expect(refusal).rejects.toThrow(
      new RegExp(`refusing to write ${disk}: .*holds /( and /boot)? of this system`),
    );
    await expect(refusal).rejects.toThrow(/is mounted at \//);
    await expect(ramroot("slot", "show", "--image", disk, "--slot", "a")).rejects.toThrow(
      new RegExp(`boot target path: ${disk}: .* is in use \\(.*holds /( and /boot)? of this system`),
    );
  });
});
