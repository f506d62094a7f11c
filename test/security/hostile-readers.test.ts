/**
 * Crafted inputs for every reader ramroot points at something it did not make: a FAT disk image
 * whose file claims 4 GiB on a looping cluster chain (the real `ramroot syslinux show`), looping
 * chains on every FAT path, initramfs images that are gzip and zstd bombs or lie about a size,
 * layers that replace thousands of directories, a tar full of PAX keys, an APKINDEX list of
 * hundreds of thousands of names, a YAML alias bomb and a flooded health report. Each fails with
 * one line (or reads what is there), with bounded reads and memory (peak RSS measured for the
 * CLI, bytes read counted for the FAT reader); how long each took is printed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { execFileSync } from "node:child_process";
import * as zlib from "node:zlib";
import { execa } from "execa";
import { compileCli, type CompiledCli } from "../fixtures/ramroot-cli";
import { findFatFile, listFatDirectory, readFatFile, readFatVolume } from "../../provider/boot/fat";
import { writeCpio, type CpioEntry } from "../../provider/image/cpio-writer";
import { readImage } from "../../provider/image/initramfs-reader";
import { readTar } from "../../provider/apk/tar-reader";
import { writeTar } from "../../provider/apk/tar-writer";
import { parseApkindex } from "../../provider/apk/apkindex";
import { HEALTH_REPORT_MAX_BYTES, parseHealthReport } from "../../provider/machine/health-report";
import { openTarget } from "../../provider/boot/target";

jest.setTimeout(600_000);

const LIMIT_KIB = 300 * 1024;

let cli: CompiledCli;
let work: string;

beforeAll(async () => {
  cli = await compileCli();
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sec-readers-"));
});
afterAll(() => {
  cli?.dispose();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** `ramroot ARGS` under /usr/bin/time: exit code, the lines that are not progress, peak RSS. */
async function ramroot(args: string[]): Promise<{ code: number; lines: string[]; maxRssKiB: number }> {
  const { file, args: nodeArgs } = cli.commandLine(args);
  const started = Date.now();
  const r = await execa("/usr/bin/time", ["-f", "MAXRSS=%M", file, ...nodeArgs], { reject: false });
  process.stdout.write(`ramroot ${args[0]} ${args[1] ?? ""}: ${Date.now() - started} ms\n`);
  const rss = /MAXRSS=(\d+)/.exec(r.stderr);
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "" && !/^(\[ramroot\]|MAXRSS=|Command exited)/.test(l));
  return { code: r.exitCode ?? -1, lines, maxRssKiB: rss ? Number(rss[1]) : Number.NaN };
}

/** How long `run` took, printed under `what`; its result. */
async function timed<T>(what: string, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await run();
  } finally {
    process.stdout.write(`${what}: ${(performance.now() - started).toFixed(0)} ms\n`);
  }
}

/** The FAT16 layout of a disk image made by `ramroot disk create --layout superfloppy`. */
function fat16(image: string) {
  const bs = Buffer.alloc(512);
  const fd = fs.openSync(image, "r");
  fs.readSync(fd, bs, 0, 512, 0);
  fs.closeSync(fd);
  const bytesPerSector = bs.readUInt16LE(11);
  const reserved = bs.readUInt16LE(14);
  const fats = bs[16]!;
  const rootEntries = bs.readUInt16LE(17);
  const fatSectors = bs.readUInt16LE(22);
  return {
    fatStarts: Array.from({ length: fats }, (_, i) => (reserved + i * fatSectors) * bytesPerSector),
    rootStart: (reserved + fats * fatSectors) * bytesPerSector,
    rootEntries,
  };
}

/** Sets a root directory entry's size and makes its first cluster point at `next` in every FAT. */
function craftFatEntry(image: string, shortName: string, size: number, next: (first: number) => number): number {
  const layout = fat16(image);
  const fd = fs.openSync(image, "r+");
  try {
    const root = Buffer.alloc(layout.rootEntries * 32);
    fs.readSync(fd, root, 0, root.length, layout.rootStart);
    for (let at = 0; at < root.length; at += 32) {
      if (root.toString("latin1", at, at + 11) !== shortName) continue;
      const first = root.readUInt16LE(at + 26);
      const sizeField = Buffer.alloc(4);
      sizeField.writeUInt32LE(size);
      fs.writeSync(fd, sizeField, 0, 4, layout.rootStart + at + 28);
      const link = Buffer.alloc(2);
      link.writeUInt16LE(next(first));
      for (const fat of layout.fatStarts) fs.writeSync(fd, link, 0, 2, fat + first * 2);
      return first;
    }
  } finally {
    fs.closeSync(fd);
  }
  throw new Error(`${shortName} is not in the root directory of ${image}`);
}

/** A FileHandle that counts the bytes read through it. */
async function countingHandle(file: string) {
  const fh = await fs.promises.open(file, "r");
  let bytes = 0;
  const counted = new Proxy(fh, {
    get: (target, prop, receiver) =>
      prop === "read"
        ? async (...args: Parameters<typeof fh.read>) => {
            const result = await (target.read as (...a: unknown[]) => Promise<{ bytesRead: number }>)(...args);
            bytes += result.bytesRead;
            return result;
          }
        : Reflect.get(target, prop, receiver),
  });
  return { fh: counted, bytesRead: () => bytes, close: () => fh.close() };
}

describe("FAT disk images", () => {
  let disk: string;

  beforeAll(async () => {
    disk = path.join(work, "disk.img");
    const made = await ramroot(["disk", "create", "--size", "32", "--layout", "superfloppy", "--slots", "a,b", disk]);
    expect(made).toMatchObject({ code: 0 });
    const cfg = path.join(work, "syslinux.cfg");
    fs.writeFileSync(cfg, "DEFAULT a\nLABEL a\n  LINUX /a/vmlinuz\n  INITRD /a/initramfs\n");
    execFileSync("mcopy", ["-i", disk, cfg, "::/syslinux.cfg"]);
    execFileSync("mmd", ["-i", disk, "::/loopdir"]);
  });

  const copy = (name: string) => {
    const to = path.join(work, name);
    fs.copyFileSync(disk, to);
    return to;
  };
  /** The image as nobody is writing it any more: the direct reader, not mtools under the lock. */
  const settle = (image: string) =>
    fs.utimesSync(image, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));

  test("syslinux.cfg claiming 4 GiB on a chain that loops: `ramroot syslinux show` fails in one line, in bounded memory", async () => {
    const image = copy("4g-loop.img");
    craftFatEntry(image, "SYSLINUXCFG", 0xffffffff, (first) => first);
    settle(image);
    const r = await ramroot(["syslinux", "show", "--image", image]);
    expect(r.code).not.toBe(0);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/syslinux\.cfg claims 4294967295 bytes, more than the volume's \d+/);
    expect(r.maxRssKiB).toBeLessThan(LIMIT_KIB);
  });

  test("a looping chain within the volume's size, and a size larger than what is read of it: each FAT path refuses after reading a few KiB", async () => {
    const image = copy("loop.img");
    craftFatEntry(image, "SYSLINUXCFG", 1 << 20, (first) => first);
    craftFatEntry(image, "LOOPDIR    ", 0, (first) => first);
    settle(image);
    const reading = await countingHandle(image);
    try {
      const vol = await readFatVolume(reading.fh, 0);
      await timed("readFatFile on a loop", () =>
        expect(readFatFile(reading.fh, vol, "syslinux.cfg")).rejects.toThrow(
          /FAT cluster chain of syslinux\.cfg loops back to cluster \d+ after 1 clusters/,
        ),
      );
      await expect(findFatFile(reading.fh, vol, "syslinux.cfg")).rejects.toThrow(/loops back to cluster/);
      await expect(listFatDirectory(reading.fh, vol, "loopdir")).rejects.toThrow(
        /chain of the directory at cluster \d+ loops back/,
      );
      // With a cap, only the first cap + 1 bytes are followed: the loop is still found within them.
      await expect(readFatFile(reading.fh, vol, "syslinux.cfg", 4096)).rejects.toThrow(/loops back to cluster/);
      expect(reading.bytesRead()).toBeLessThan(256 << 10); // the FAT (32 KiB) and a few sectors
    } finally {
      await reading.close();
    }
    const r = await ramroot(["syslinux", "show", "--image", image]);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/(loops back to cluster|is larger than the \d+ bytes read of it)/);
  });

  test("a boot sector declaring a volume larger than the image is refused when the image is opened", async () => {
    const image = copy("short.img");
    fs.truncateSync(image, 8 << 20);
    const r = await ramroot(["syslinux", "show", "--image", image]);
    expect(r.code).not.toBe(0);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/declares \d+ sectors \(\d+ bytes\), more than the image holds/);
  });
});

describe("initramfs images", () => {
  const archive = async (entries: CpioEntry[]): Promise<Buffer> => {
    const raw = new PassThrough();
    const chunks: Buffer[] = [];
    raw.on("data", (c: Buffer) => chunks.push(c));
    await writeCpio(entries, raw, { epoch: 0 });
    raw.end();
    return Buffer.concat(chunks);
  };

  test("a gzip bomb and a zstd bomb: `ramroot image ls` refuses each in one line, in bounded memory", async () => {
    const zeros = Buffer.alloc(1 << 30);
    const gz = path.join(work, "bomb.gz");
    fs.writeFileSync(gz, zlib.gzipSync(zeros, { level: 9 }));
    const zst = path.join(work, "bomb.zst");
    execFileSync("zstd", ["-19", "-q", "-f", "-o", zst], { input: zeros });
    for (const image of [gz, zst]) {
      expect(fs.statSync(image).size).toBeLessThan(2 << 20);
      const r = await ramroot(["image", "ls", image]);
      expect(r.code).not.toBe(0);
      expect(r.lines).toHaveLength(1);
      expect(r.lines[0]).toMatch(/expands beyond \d+ bytes \(from \d+ compressed\); refused as a decompression bomb/);
      expect(r.maxRssKiB).toBeLessThan(LIMIT_KIB);
    }
  });

  test("a cpio entry claiming 4 GiB of content fails in one line", async () => {
    const good = await archive([{ path: "etc", type: "dir", mode: 0o755, uid: 0, gid: 0 }]);
    // the first header's c_filesize (bytes 54-62 of a newc header)
    const crafted = Buffer.from(good);
    crafted.write("FFFFFFFF", 54, "latin1");
    const image = path.join(work, "huge-entry.cpio");
    fs.writeFileSync(image, crafted);
    const r = await ramroot(["image", "ls", image]);
    expect(r.code).not.toBe(0);
    expect(r.lines).toHaveLength(1);
    expect(r.maxRssKiB).toBeLessThan(LIMIT_KIB);
  });

  test("a layer replacing each of 30000 directories with a file is read without a scan of every path per directory", async () => {
    const dirs: CpioEntry[] = [];
    const files: CpioEntry[] = [];
    for (let i = 0; i < 30000; i++) {
      dirs.push({ path: `d${i}`, type: "dir", mode: 0o755, uid: 0, gid: 0 });
      files.push({ path: `d${i}`, type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from("f") });
    }
    const image = Buffer.concat([await archive(dirs), await archive(files)]);
    const read = await timed("30000 directories replaced", () => readImage(image, "replaced"));
    expect(read.layers).toHaveLength(2);
    expect(read.entries.get("d29999")?.type).toBe("file");
  });
});

test("a tar whose PAX records carry 300 keys is refused; one with a few is read", () => {
  const pax = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`RAMROOT.key${i}`, "v"]));
  const tar = (n: number) =>
    writeTar(
      [{ name: "f", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 0, content: Buffer.from("x"), pax: pax(n) }],
      {
        endOfArchive: true,
      },
    );
  expect(readTar(tar(5), "few.tar")[0]?.pax["RAMROOT.key4"]).toBe("v");
  expect(() => readTar(tar(300), "many.tar")).toThrow(/many\.tar: tar header at byte 0: more than 256 PAX keys/);
});

test("an APKINDEX dependency line of 300000 names is read, not spread onto the stack", () => {
  const names = Array.from({ length: 300_000 }, (_, i) => `so:lib${i}.so`).join(" ");
  const records = parseApkindex(`P:big\nV:1.0-r0\nD:${names}\n\n`, "APKINDEX");
  expect(records[0]?.depends).toHaveLength(300_000);
});

test("a YAML alias bomb as a build config fails in one line, in bounded memory", async () => {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 12; i++) {
    const prev = String.fromCharCode(96 + i);
    const next = String.fromCharCode(97 + i);
    lines.push(`${next}: &${next} [${Array.from({ length: 10 }, () => `*${prev}`).join(",")}]`);
  }
  const config = path.join(work, "bomb.yaml");
  fs.writeFileSync(config, `${lines.join("\n")}\npackages: *l\n`);
  const r = await ramroot(["build", config, "--plan-only"]);
  expect(r.code).not.toBe(0);
  expect(r.lines).toHaveLength(1);
  expect(r.lines[0]).toMatch(/bomb\.yaml is not valid YAML or JSON: .*(alias|Excessive)/i);
  expect(r.maxRssKiB).toBeLessThan(LIMIT_KIB);
});

test("a flooded health report: what is read of it is bounded, and the parser keeps 64 checks of 4 KiB output at most", async () => {
  const report = [
    "image 3f9c",
    "trial yes",
    "status unhealthy",
    "uptime 95",
    ...Array.from({ length: 100_000 }, (_, i) => `check c${i} failed (exit 1)\n  ${"o".repeat(100)}`),
  ].join("\n");
  const parsed = timed("parse a 10 MB report", async () => parseHealthReport(report));
  const result = (await parsed)!;
  expect(result.status).toBe("unhealthy");
  expect(result.checks.length).toBeLessThanOrEqual(64);
  expect(Math.max(...result.checks.map((c) => c.output.length))).toBeLessThanOrEqual(4096);
  const dir = path.join(work, "boot");
  fs.mkdirSync(path.join(dir, "ramroot"), { recursive: true });
  fs.writeFileSync(path.join(dir, "ramroot", "trial-report"), report);
  const target = await openTarget({ kind: "local", path: dir });
  try {
    await expect(target.readFile("ramroot/trial-report", { maxBytes: HEALTH_REPORT_MAX_BYTES })).rejects.toThrow(
      /ramroot\/trial-report is larger than the 65536 bytes read of it; refused/,
    );
  } finally {
    await target.close();
  }
});
