import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { writeCpio, type CpioEntry } from "../../../provider/image/cpio-writer";
import { compressor, type Compression } from "../../../provider/image/compress";
import { readImage } from "../../../provider/image/initramfs-reader";
import { diffImages, renderDiff, summarizeDiff } from "../../../provider/image/image-diff";
import { extractImage } from "../../../provider/image/image-extract";
import { readImageFile } from "../../../provider/image/image-read";
import { expectImageHolds, readBack } from "../../fixtures/image-readback";

// ramroot's newc writer, read back by an independent reader (cpio-stream) through every
// compression and as a concatenation of archives, the way the kernel unpacks an initramfs.

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-readback-"));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** One archive, compressed as the builder does; resolves to the bytes. */
async function archive(entries: CpioEntry[], compression: Compression): Promise<Buffer> {
  const out = path.join(work, `part-${Math.random().toString(36).slice(2)}`);
  const raw = new PassThrough();
  const c = compressor(compression);
  const done = c ? pipeline(raw, c, fs.createWriteStream(out)) : pipeline(raw, fs.createWriteStream(out));
  await writeCpio(entries, raw, { epoch: 1_700_000_000 });
  raw.end();
  await done;
  return fs.readFileSync(out);
}

function installedDb(pkgs: Record<string, { version: string; files: string[] }>): string {
  return Object.entries(pkgs)
    .map(([name, p]) => {
      const dirs = new Map<string, string[]>();
      for (const f of p.files)
        dirs.set(path.posix.dirname(f), [...(dirs.get(path.posix.dirname(f)) ?? []), path.posix.basename(f)]);
      return (
        [
          `P:${name}`,
          `V:${p.version}`,
          ...[...dirs].flatMap(([d, fs_]) => [`F:${d}`, ...fs_.map((f) => `R:${f}`)]),
          "",
        ].join("\n") + "\n"
      );
    })
    .join("");
}

function base(): CpioEntry[] {
  const big = path.join(work, "big.bin");
  fs.writeFileSync(big, Buffer.alloc(3 * 1024 * 1024 + 7, 0xab));
  const db = installedDb({
    busybox: { version: "1.36.1-r0", files: ["bin/busybox"] },
    tool: { version: "1.0-r0", files: ["usr/bin/tool", "bin/tool-link"] },
  });
  return [
    { path: "bin", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "bin/busybox", type: "file", mode: 0o755, uid: 0, gid: 0, source: Buffer.from("busybox v1") },
    { path: "bin/sh", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkTarget: "busybox" },
    { path: "bin/tool-link", type: "file", mode: 0o4755, uid: 0, gid: 0, source: big, hardLinkKey: "t" },
    { path: "usr", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "usr/bin", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "usr/bin/tool", type: "file", mode: 0o4755, uid: 0, gid: 0, source: big, hardLinkKey: "t" },
    { path: "etc", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "etc/message", type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from("hello\n") },
    { path: "etc/empty", type: "file", mode: 0o600, uid: 0, gid: 0, source: Buffer.alloc(0) },
    { path: "var", type: "dir", mode: 0o1777, uid: 100, gid: 101 },
    { path: "dev", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "dev/console", type: "char", mode: 0o600, uid: 0, gid: 5, rdevMajor: 5, rdevMinor: 1 },
    { path: "dev/sda", type: "block", mode: 0o660, uid: 0, gid: 6, rdevMajor: 8, rdevMinor: 0 },
    { path: "run", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "run/fifo", type: "fifo", mode: 0o600, uid: 0, gid: 0 },
    { path: "lib", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "lib/apk", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "lib/apk/db", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "lib/apk/db/installed", type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(db) },
  ];
}

test.each(["gzip", "zstd", "none"] as const)(
  "every entry the writer packs (%s) reads back through cpio-stream: type, mode, owner, content, link, device",
  async (compression) => {
    const entries = base();
    const file = path.join(work, "initramfs");
    fs.writeFileSync(file, await archive(entries, compression));
    await expectImageHolds(file, entries);
    const read = await readImage(fs.readFileSync(file), file);
    expect(read.layers).toEqual([
      expect.objectContaining({ layer: 1, compression, offset: 0, entries: entries.length }),
    ]);
  },
);

test("concatenated archives (separately compressed layers, zero padding, mixed compressions) read as the kernel unpacks them: later entries replace earlier ones", async () => {
  const first = base();
  const second: CpioEntry[] = [
    { path: "etc", type: "dir", mode: 0o750, uid: 0, gid: 0 },
    { path: "etc/message", type: "file", mode: 0o640, uid: 0, gid: 0, source: Buffer.from("edited\n") },
    { path: "etc/new", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkTarget: "message" },
  ];
  const third: CpioEntry[] = [
    { path: "bin/busybox", type: "file", mode: 0o755, uid: 0, gid: 0, source: Buffer.from("busybox v2") },
  ];
  const file = path.join(work, "layered");
  fs.writeFileSync(
    file,
    Buffer.concat([
      await archive(first, "gzip"),
      await archive(second, "gzip"),
      Buffer.alloc(512),
      await archive(third, "zstd"),
      await archive(second, "none"),
    ]),
  );
  await expectImageHolds(file, first, second, third, second);
  const read = await readImage(fs.readFileSync(file), file);
  expect(read.layers.map((l) => [l.layer, l.compression, l.entries])).toEqual([
    [1, "gzip", first.length],
    [2, "gzip", 3],
    [3, "zstd", 1],
    [4, "none", 3],
  ]);
  expect(read.entries.get("bin/busybox")?.layer).toBe(3);
});

test("GNU cpio's archives (data on the last hard link, 512-byte padding) read back too, also two in a row", async () => {
  const tree = path.join(work, "tree");
  fs.mkdirSync(path.join(tree, "d"), { recursive: true });
  fs.writeFileSync(path.join(tree, "f"), "hello\n");
  fs.linkSync(path.join(tree, "f"), path.join(tree, "h"));
  fs.symlinkSync("f", path.join(tree, "l"));
  const one = execFileSync("sh", ["-c", "find . | LC_ALL=C sort | cpio -o -H newc 2>/dev/null"], { cwd: tree });
  const file = path.join(work, "gnu.cpio");
  fs.writeFileSync(file, Buffer.concat([one, one]));
  const got = await readBack(file);
  expect(got.get("h")).toEqual(got.get("f") && { ...got.get("f"), path: "h" });
  expect(got.get("f")?.size).toBe(6);
  expect(got.get("l")?.linkTarget).toBe("f");
  expect((await readImage(fs.readFileSync(file), file)).layers).toHaveLength(2);
});

test("a truncated or foreign image is refused naming where", async () => {
  const good = await archive(base(), "none");
  await expect(readImage(good.subarray(0, good.length - 200), "cut")).rejects.toThrow(/cut: .*TRAILER!!!|cut/);
  await expect(readImage(Buffer.from("PK\x03\x04 not an initramfs"), "zip")).rejects.toThrow(
    /zip: byte 0 starts neither a cpio archive nor a gzip or zstd member/,
  );
});

test("diff names added, removed and changed paths by package, with package versions; extract writes the tree without leaving the directory", async () => {
  const before = base();
  const after = base()
    .filter((e) => e.path !== "etc/empty")
    .map((e) =>
      e.path === "etc/message"
        ? { ...e, source: Buffer.from("edited\n") }
        : e.path === "bin/busybox"
          ? { ...e, mode: 0o4755 }
          : e,
    );
  const db = installedDb({
    busybox: { version: "1.36.1-r1", files: ["bin/busybox"] },
    tool: { version: "1.0-r0", files: ["usr/bin/tool", "bin/tool-link"] },
    hello: { version: "1.0-r0", files: ["usr/bin/hello"] },
  });
  const withHello = after
    .map((e) => (e.path === "lib/apk/db/installed" ? { ...e, source: Buffer.from(db) } : e))
    .concat([
      {
        path: "usr/bin/hello",
        type: "file",
        mode: 0o755,
        uid: 0,
        gid: 0,
        source: Buffer.from("#!/bin/sh\necho hello\n"),
      },
    ]);
  fs.writeFileSync(path.join(work, "a.img"), await archive(before, "gzip"));
  fs.writeFileSync(path.join(work, "b.img"), await archive(withHello, "zstd"));
  const a = await readImageFile(path.join(work, "a.img"));
  const b = await readImageFile(path.join(work, "b.img"));
  const diff = diffImages(a, b);
  const text = renderDiff(diff, a, b);
  expect(text).toContain("+ package hello 1.0-r0");
  expect(text).toContain("~ package busybox 1.36.1-r0 -> 1.36.1-r1");
  expect(text).toContain("hello:");
  expect(text.some((l) => /^ {2}\+ usr\/bin\/hello {2}file 0755 0:0 21 [0-9a-f]{12}$/.test(l))).toBe(true);
  expect(text).toContain("busybox:");
  expect(text).toContain("  ~ bin/busybox  mode 0755 -> 4755");
  expect(text.some((l) => /^ {2}~ etc\/message {2}size 6 -> 7, sha256 [0-9a-f]{12} -> [0-9a-f]{12}$/.test(l))).toBe(
    true,
  );
  expect(text).toContain("  - etc/empty  file 0600 0:0 0 e3b0c44298fc");
  expect(summarizeDiff(diff)).toBe("+1 -1 ~3 paths, 2 packages changed");
  expect(renderDiff(diffImages(a, a), a, a)).toEqual([
    "no difference: the two images hold the same paths, modes, owners and contents",
  ]);

  const out = path.join(work, "out");
  const result = await extractImage(() => fs.promises.readFile(path.join(work, "b.img")), "b.img", out);
  expect(fs.readFileSync(path.join(out, "etc/message"), "utf8")).toBe("edited\n");
  expect(fs.readlinkSync(path.join(out, "bin/sh"))).toBe("busybox");
  expect(fs.statSync(path.join(out, "usr/bin/tool")).mode & 0o7777).toBe(0o4755);
  expect(fs.statSync(path.join(out, "usr/bin/tool")).size).toBe(3 * 1024 * 1024 + 7);
  expect(result.skipped.sort()).toEqual(["dev/console (char)", "dev/sda (block)", "run/fifo (fifo)"]);
  const only = path.join(work, "only");
  await extractImage(() => fs.promises.readFile(path.join(work, "b.img")), "b.img", only, ["/etc"]);
  expect(fs.readdirSync(only)).toEqual(["etc"]);

  const hostile = path.join(work, "hostile.img");
  const gnu = path.join(work, "gnu");
  fs.mkdirSync(gnu);
  fs.writeFileSync(path.join(work, "escape"), "x");
  fs.writeFileSync(hostile, execFileSync("sh", ["-c", "echo ../escape | cpio -o -H newc 2>/dev/null"], { cwd: gnu }));
  await expect(extractImage(() => fs.promises.readFile(hostile), hostile, path.join(work, "h-out"))).rejects.toThrow(
    /"\.\.\/escape" would leave the destination; refused/,
  );
});
