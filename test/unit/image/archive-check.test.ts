import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { checkArchive, compareArchive, withArchiveCheck } from "../../../provider/image/archive-check";
import { compressor, type Compression } from "../../../provider/image/compress";
import { writeCpio, type CpioEntry } from "../../../provider/image/cpio-writer";

// The builder's own check (RAMROOT_CHECK_ARCHIVES=1, on for the whole test suite): an archive
// ramroot's writer packed is read back through cpio-stream and compared with the staging tree
// it was packed from; what differs is named, path and field.

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-archive-check-"));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** A small staging tree on disk and the entries the builder would hand the writer for it. */
function stagingTree(): CpioEntry[] {
  const root = path.join(work, "root");
  fs.mkdirSync(path.join(root, "bin"), { recursive: true });
  fs.mkdirSync(path.join(root, "etc"), { recursive: true });
  fs.writeFileSync(path.join(root, "bin", "busybox"), Buffer.alloc(2 * 1024 * 1024 + 3, 0x5a));
  fs.writeFileSync(path.join(root, "etc", "message"), "hello from the staging tree\n");
  return [
    { path: "bin", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "bin/busybox", type: "file", mode: 0o4755, uid: 0, gid: 0, source: path.join(root, "bin", "busybox") },
    { path: "bin/sh", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkTarget: "busybox" },
    { path: "dev", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "dev/console", type: "char", mode: 0o600, uid: 0, gid: 5, rdevMajor: 5, rdevMinor: 1 },
    { path: "etc", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    { path: "etc/message", type: "file", mode: 0o644, uid: 0, gid: 0, source: path.join(root, "etc", "message") },
    { path: "etc/motd", type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from("inline\n") },
    { path: "var", type: "dir", mode: 0o1777, uid: 100, gid: 101 },
  ];
}

async function pack(entries: CpioEntry[], compression: Compression): Promise<string> {
  const out = path.join(work, `archive-${compression}`);
  const raw = new PassThrough();
  const c = compressor(compression);
  const done = c ? pipeline(raw, c, fs.createWriteStream(out)) : pipeline(raw, fs.createWriteStream(out));
  await writeCpio(entries, raw, { epoch: 0 });
  raw.end();
  await done;
  return out;
}

test.each(["gzip", "zstd", "none"] as const)(
  "an archive packed from a staging tree (%s) reads back as packed",
  async (compression) => {
    const entries = stagingTree();
    const file = await pack(entries, compression);
    expect(await compareArchive(file, entries)).toEqual({ entries: entries.length, archives: 1, mismatches: [] });
    expect(await checkArchive(file, entries)).toBe(entries.length);
  },
);

test("a byte changed in the archive, a staging file changed after packing, an entry the builder did not hand over: each named", async () => {
  const entries = stagingTree();
  const file = await pack(entries, "none");

  // one byte of etc/message's content flipped inside the archive
  const bytes = fs.readFileSync(file);
  const at = bytes.indexOf("hello from the staging tree");
  bytes[at] = "j".charCodeAt(0);
  const damaged = path.join(work, "damaged");
  fs.writeFileSync(damaged, bytes);
  const result = await compareArchive(damaged, entries);
  expect(result.mismatches).toEqual([
    expect.stringMatching(/^etc\/message: sha256 [0-9a-f]{64} packed, [0-9a-f]{64} read$/),
  ]);
  await expect(checkArchive(damaged, entries)).rejects.toThrow(
    /damaged does not read back \(cpio-stream\) as it was packed: etc\/message: sha256 /,
  );

  // the staging tree no longer holds what was packed, and a mode the builder meant differs
  fs.appendFileSync(entries.find((e) => e.path === "etc/message")!.source as string, "more\n");
  const meant = entries.map((e) => (e.path === "var" ? { ...e, mode: 0o755 } : e));
  expect((await compareArchive(file, meant)).mismatches).toEqual([
    expect.stringMatching(/^etc\/message: size 33 packed, 28 read$/),
    expect.stringMatching(/^etc\/message: sha256 /),
    "var: mode 0755 packed, 01777 read",
  ]);

  // what the archive holds but the list does not, and the other way round
  const fewer = entries.filter((e) => e.path !== "dev/console");
  const more: CpioEntry[] = [...entries, { path: "etc/extra", type: "dir", mode: 0o755, uid: 0, gid: 0 }];
  const original = path.join(work, "original");
  await pack(stagingTree(), "gzip").then((f) => fs.renameSync(f, original));
  expect((await compareArchive(original, fewer)).mismatches).toEqual(["dev/console: read back, never packed"]);
  expect((await compareArchive(original, more)).mismatches).toEqual(["etc/extra: packed, not read back"]);
  expect((await compareArchive(original, entries, [])).mismatches).toEqual(["1 archives read, 2 packed"]);
});

test("withArchiveCheck: off, the builder's callback alone; on, the check runs first, says so, and stops a bad archive before the callback", async () => {
  const entries = stagingTree();
  const file = await pack(entries, "gzip");
  const seen: string[] = [];
  const lines: string[] = [];
  const callback = ({ file: f }: { file: string }) => void seen.push(f);

  expect(withArchiveCheck(callback, (l) => lines.push(l), false)).toBe(callback);
  expect(withArchiveCheck(undefined, (l) => lines.push(l), false)).toBeUndefined();

  const checking = withArchiveCheck(callback, (l) => lines.push(l), true)!;
  await checking({ file, entries });
  expect(lines).toEqual([`read back through cpio-stream: ${entries.length} paths, as packed`]);
  expect(seen).toEqual([file]);

  const wrong = entries.map((e) => (e.path === "bin/sh" ? { ...e, linkTarget: "ash" } : e));
  await expect(checking({ file, entries: wrong })).rejects.toThrow(
    /bin\/sh: size 3 packed, 7 read; bin\/sh: linkTarget ash packed, busybox read/,
  );
  expect(seen).toEqual([file]);
});
