import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { createDisk } from "../../../provider/boot/disk-create";
import { fatVolumeIdFromProbe, fatVolumeIdOf } from "../../../provider/boot/fat-volume-id";
import { mountHolding, parseMountInfo } from "../../../provider/boot/mountinfo";
import { openTarget } from "../../../provider/boot/target";
import { parseVolumeProbe, volumeProbeScript } from "../../../provider/boot/volume-probe";

// The FAT volume serial and label, read from the boot sector, against what blkid (util-linux)
// reads from the same bytes: FAT12, FAT16 and FAT32 made by the real mkfs.fat, and the disks
// `ramroot disk create` makes.
jest.setTimeout(60_000);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-volume-id-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** blkid's view of a filesystem image (UUID = the FAT serial, LABEL). */
function blkid(file: string, offset = 0): Record<string, string> {
  const out = execFileSync("blkid", ["-p", "-O", String(offset), "-o", "export", file], { encoding: "utf8" });
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((l) => l.split("=", 2) as [string, string]),
  );
}

function firstSector(file: string, offset = 0): Buffer {
  const fd = fs.openSync(file, "r");
  try {
    const sector = Buffer.alloc(512);
    fs.readSync(fd, sector, 0, 512, offset);
    return sector;
  } finally {
    fs.closeSync(fd);
  }
}

test.each([
  [12, 4, "SMALL", "0a1b2c3d"],
  [16, 32, "RAMROOT", "52414d52"],
  [32, 64, "BIG_VOL-1", "deadbeef"],
])("FAT%i: the boot sector's serial and label are the ones blkid reports", (bits, mib, label, serial) => {
  const file = path.join(dir, `fat${bits}.img`);
  fs.rmSync(file, { force: true });
  execFileSync("mkfs.fat", ["-C", "-F", String(bits), "-i", serial, "-n", label, file, String(mib * 1024)]);
  const id = fatVolumeIdOf(firstSector(file));
  const probed = blkid(file);
  expect(probed.TYPE).toBe("vfat");
  expect(id).toEqual({ serial: probed.UUID, label: probed.LABEL });
  expect(id?.serial).toBe(`${serial.slice(0, 4)}-${serial.slice(4)}`.toUpperCase());
  expect(fatVolumeIdFromProbe(probed.UUID!, probed.LABEL)).toEqual(id);
});

test('a FAT made without a label has none ("NO NAME"), as blkid says; a sector that is not FAT has no volume', () => {
  const file = path.join(dir, "nolabel.img");
  execFileSync("mkfs.fat", ["-C", "-i", "12345678", file, "8192"]);
  expect(fatVolumeIdOf(firstSector(file))).toEqual({ serial: "1234-5678", label: "" });
  expect(blkid(file).LABEL).toBeUndefined();
  const ext = path.join(dir, "ext.img");
  execFileSync("mkfs.ext4", ["-q", "-F", ext, "8M"]);
  expect(fatVolumeIdOf(firstSector(ext))).toBeUndefined();
  expect(fatVolumeIdOf(Buffer.alloc(512))).toBeUndefined();
});

test("ramroot disk create: every disk gets its own volume id unless one is given, and the image target reads it at the FAT's offset", async () => {
  const one = await createDisk({ output: path.join(dir, "one.img"), sizeMiB: 16, slots: ["a", "b"] });
  const two = await createDisk({ output: path.join(dir, "two.img"), sizeMiB: 16, slots: ["a", "b"] });
  expect(one.volumeId).not.toBe(two.volumeId);
  expect(one.label).toBe("RAMROOT");
  expect(blkid(one.output, one.fatOffset).UUID).toBe(one.volumeId);
  const target = await openTarget({ kind: "image", path: one.output });
  try {
    expect(await target.bootVolume()).toEqual({ serial: one.volumeId, label: "RAMROOT", dir: "" });
  } finally {
    await target.close();
  }
  const pinned = await createDisk({
    output: path.join(dir, "pinned.img"),
    sizeMiB: 16,
    slots: ["a"],
    volumeId: 0x0badf00d,
    label: "STICK",
    layout: "superfloppy",
  });
  expect(pinned).toMatchObject({ volumeId: "0BAD-F00D", label: "STICK", fatOffset: 0 });
  expect(fatVolumeIdOf(firstSector(pinned.output))).toEqual({ serial: "0BAD-F00D", label: "STICK" });
});

test("mountinfo: this process's own table finds the mount holding a directory, escapes read as the kernel writes them", () => {
  const mounts = parseMountInfo(fs.readFileSync("/proc/self/mountinfo", "utf8"));
  expect(mounts.length).toBeGreaterThan(0);
  const root = mountHolding(mounts, "/");
  expect(root?.mount.mountPoint).toBe("/");
  expect(mountHolding(mounts, fs.realpathSync(dir))?.mount.mountPoint).toBeDefined();
  // A line as the kernel writes a bind mount of /srv/boot dir at "/mnt/my boot" (space as \040).
  const bind = parseMountInfo(
    "41 23 8:17 /srv/boot\\040dir /mnt/my\\040boot rw,noatime shared:9 - vfat /dev/sdb1 rw\n",
  );
  expect(bind).toEqual([
    { device: "8:17", root: "/srv/boot dir", mountPoint: "/mnt/my boot", fsType: "vfat", source: "/dev/sdb1" },
  ]);
  expect(mountHolding(bind, "/mnt/my boot/ramroot")).toEqual({ mount: bind[0], dir: "srv/boot dir/ramroot" });
  expect(mountHolding(bind, "/mnt/my bootx")).toBeUndefined();
});

test("the volume probe script finds the mount holding a directory as mountinfo.ts does, under dash and busybox sh; a directory on no FAT has no volume", () => {
  const mounts = parseMountInfo(fs.readFileSync("/proc/self/mountinfo", "utf8"));
  const sub = path.join(dir, "probe dir", "inner");
  fs.mkdirSync(sub, { recursive: true });
  for (const shell of [["sh"], ["/bin/busybox", "sh"]]) {
    for (const where of ["/", dir, sub]) {
      const real = fs.realpathSync(where);
      const out = execFileSync(shell[0]!, [...shell.slice(1), "-c", volumeProbeScript(where)]);
      const [mount, root, mountPoint, realDir] = out.toString("utf8").split("\n");
      const held = mountHolding(mounts, real)!;
      expect({ mount, root, mountPoint, realDir }).toEqual({
        mount: `mount ${held.mount.device} ${held.mount.fsType}`,
        root: held.mount.root,
        mountPoint: held.mount.mountPoint,
        realDir: real,
      });
      expect(parseVolumeProbe(0, out)).toBeUndefined();
    }
  }
  expect(spawnSync("sh", ["-c", volumeProbeScript(path.join(dir, "missing"))]).status).toBe(3);
});

test("a probe of a FAT mount is read as the serial and label of the sector it carries, or of the /dev/disk links", async () => {
  const { output } = await createDisk({
    output: path.join(dir, "probed.img"),
    sizeMiB: 16,
    slots: ["a"],
    layout: "superfloppy",
    volumeId: 0x1a2b3c4d,
    label: "PROBED",
  });
  const header = "mount 8:17 vfat\n/\n/media/boot\n/media/boot/sub\ndevice /dev/sdb1\n";
  const sector = Buffer.concat([Buffer.from(`${header}sector\n`), firstSector(output)]);
  expect(parseVolumeProbe(0, sector)).toEqual({ serial: "1A2B-3C4D", label: "PROBED", dir: "sub" });
  const links = Buffer.from(`${header}uuid 1A2B-3C4D\nlabel MY\\x20STICK\n`);
  expect(parseVolumeProbe(0, links)).toEqual({ serial: "1A2B-3C4D", label: "MY STICK", dir: "sub" });
  expect(parseVolumeProbe(0, Buffer.from(header))).toBeUndefined();
});
