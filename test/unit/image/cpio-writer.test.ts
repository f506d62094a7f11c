import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { PassThrough } from "node:stream";
import { archiveOrder, writeCpio, type CpioEntry } from "../../../provider/image/cpio-writer";
import { expectImageHolds } from "../../fixtures/image-readback";

async function pack(entries: CpioEntry[], epoch = 1_700_000_000): Promise<Buffer> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (c: Buffer) => chunks.push(c));
  const written = await writeCpio(entries, sink, { epoch });
  sink.end();
  const buf = Buffer.concat(chunks);
  expect(written).toBe(buf.length);
  return buf;
}

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-cpio-"));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

function sample(): CpioEntry[] {
  const big = path.join(work, "big.bin");
  fs.writeFileSync(big, Buffer.alloc(3 * 1024 * 1024 + 7, 0xab));
  return [
    { path: "usr/bin/tool", type: "file", mode: 0o4755, uid: 0, gid: 0, source: big, hardLinkKey: "t" },
    { path: "etc/hostname", type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from("nas\n") },
    { path: "usr", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "usr/bin", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "etc", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "bin", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "bin/tool-link", type: "file", mode: 0o4755, uid: 0, gid: 0, source: big, hardLinkKey: "t" },
    { path: "bin/sh", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkTarget: "/usr/bin/tool" },
    { path: "var", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "var/empty", type: "dir", mode: 0o1777, uid: 100, gid: 101 },
    { path: "dev", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "dev/console", type: "char", mode: 0o600, uid: 0, gid: 5, rdevMajor: 5, rdevMinor: 1 },
  ];
}

test("archive order puts parents first and sorts siblings by bytes", () => {
  const order = archiveOrder(sample()).map((e) => e.path);
  expect(order).toEqual([
    "bin",
    "bin/sh",
    "bin/tool-link",
    "dev",
    "dev/console",
    "etc",
    "etc/hostname",
    "usr",
    "usr/bin",
    "usr/bin/tool",
    "var",
    "var/empty",
  ]);
  for (const [i, p] of order.entries()) {
    const parent = path.posix.dirname(p);
    if (parent !== ".") expect(order.indexOf(parent)).toBeLessThan(i);
  }
});

test("GNU cpio reads back every entry with its mode, owner, link and content", async () => {
  const archive = await pack(sample());
  const listing = execFileSync("cpio", ["-itv", "--quiet", "--numeric-uid-gid"], { input: archive, encoding: "utf8" });
  expect(listing).toMatch(/-rwsr-xr-x\s+2 0\s+0\s+3145735 .* usr\/bin\/tool/);
  expect(listing).toMatch(/drwxrwxrwt\s+2 100\s+101\s+0 .* var\/empty/);
  expect(listing).toMatch(/lrwxrwxrwx\s+1 0\s+0\s+\d+ .* bin\/sh -> \/usr\/bin\/tool/);
  expect(listing).toMatch(/crw-------\s+1 0\s+5\s+5,\s+1 .* dev\/console/);
  const out = path.join(work, "out");
  fs.mkdirSync(out);
  execFileSync("cpio", ["-idm", "--quiet", "--no-absolute-filenames"], { input: archive, cwd: out });
  const tool = fs.statSync(path.join(out, "usr/bin/tool"));
  const link = fs.statSync(path.join(out, "bin/tool-link"));
  expect(tool.ino).toBe(link.ino); // a real hard link
  expect(tool.size).toBe(3 * 1024 * 1024 + 7);
  expect(fs.readFileSync(path.join(out, "etc/hostname"), "utf8")).toBe("nas\n");
  expect(fs.readlinkSync(path.join(out, "bin/sh"))).toBe("/usr/bin/tool");
  expect(tool.mtimeMs / 1000).toBe(1_700_000_000);
  // and cpio-stream, the independent reader every image test uses, agrees entry by entry
  fs.writeFileSync(path.join(work, "archive.cpio"), archive);
  await expectImageHolds(path.join(work, "archive.cpio"), sample());
});

test("same entries, same bytes; another epoch changes only timestamps", async () => {
  const a = await pack(sample());
  const b = await pack([...sample()].reverse());
  expect(Buffer.compare(a, b)).toBe(0);
  const c = await pack(sample(), 1_800_000_000);
  expect(c.length).toBe(a.length);
  expect(c.equals(a)).toBe(false);
});

test("no host leakage: inode numbers count up from 1 in archive order", async () => {
  const archive = await pack(sample());
  const inodes: number[] = [];
  let at = 0;
  while (at < archive.length) {
    const h = archive.subarray(at, at + 110).toString("latin1");
    expect(h.slice(0, 6)).toBe("070701");
    const field = (i: number) => parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const nameSize = field(11);
    const size = field(6);
    const name = archive.subarray(at + 110, at + 110 + nameSize - 1).toString();
    if (name === "TRAILER!!!") break;
    inodes.push(field(0));
    at += 110 + nameSize;
    at += (4 - (at % 4)) % 4;
    at += size + ((4 - (size % 4)) % 4);
  }
  // bin/tool-link and usr/bin/tool share inode 3
  expect(inodes).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 10, 11]);
});

test("refuses absolute, dotted and duplicate paths", async () => {
  await expect(pack([{ path: "/etc", type: "dir", mode: 0o755, uid: 0, gid: 0 }])).rejects.toThrow(/must be relative/);
  await expect(pack([{ path: "a/../b", type: "dir", mode: 0o755, uid: 0, gid: 0 }])).rejects.toThrow(/"\.\."/);
  await expect(
    pack([
      { path: "a", type: "dir", mode: 0o755, uid: 0, gid: 0 },
      { path: "a", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    ]),
  ).rejects.toThrow(/appears twice/);
});
