import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { expandDataTar, type FileManifest } from "../../../provider/apk/expand";
import { fromHostId, SANDBOX_ID_BASE } from "../../../provider/apk/sandbox-ids";
import { writeTar, type TarEntry } from "../../../provider/apk/tar-writer";

let work: string;
let n = 0;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-apk-expand-"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const sha1 = (s: string | Buffer) => createHash("sha1").update(s).digest("hex");
const dir = (name: string, extra: Partial<TarEntry> = {}): TarEntry => ({
  name,
  type: "directory",
  mode: 0o755,
  uid: 0,
  gid: 0,
  mtime: 0,
  ...extra,
});
const file = (name: string, text: string, extra: Partial<TarEntry> = {}): TarEntry => ({
  name,
  type: "file",
  mode: 0o644,
  uid: 0,
  gid: 0,
  mtime: 0,
  content: Buffer.from(text),
  pax: { "APK-TOOLS.checksum.SHA1": sha1(text) },
  ...extra,
});
const link = (name: string, target: string): TarEntry => ({
  name,
  type: "symlink",
  mode: 0o777,
  uid: 0,
  gid: 0,
  mtime: 0,
  linkTarget: target,
});
const freshRoot = () => {
  const root = path.join(work, `root${n++}`);
  fs.mkdirSync(root);
  return root;
};
const tar = (entries: TarEntry[]) => writeTar(entries, { endOfArchive: true });

test("unpacks files, dirs, symlinks and hard links, recording ownership, modes and SHA-1s without applying ownership", async () => {
  const root = freshRoot();
  const manifest: FileManifest = new Map();
  const dirs = await expandDataTar(
    tar([
      dir("etc/"),
      file("etc/shadow", "root:*:::::::\n", { mode: 0o640, gid: 42, gname: "shadow" }),
      dir("usr/"),
      dir("usr/bin/"),
      file("usr/bin/su", "su-binary", { mode: 0o4755 }),
      { name: "usr/bin/su2", type: "hardlink", mode: 0o4755, uid: 0, gid: 0, mtime: 0, linkTarget: "usr/bin/su" },
      link("usr/bin/sh", "/bin/busybox"),
      dir("var/empty/", { mode: 0o555, uid: 33, uname: "www" }),
    ]),
    { root, manifest, packageName: "demo", source: "demo.apk" },
  );
  expect(fs.readFileSync(path.join(root, "usr/bin/su"), "utf8")).toBe("su-binary");
  expect(fs.statSync(path.join(root, "usr/bin/su")).ino).toBe(fs.statSync(path.join(root, "usr/bin/su2")).ino);
  expect(fs.readlinkSync(path.join(root, "usr/bin/sh"))).toBe("/bin/busybox");
  expect(fs.statSync(path.join(root, "usr/bin/su")).mode & 0o7777).toBe(0o755); // setuid recorded, not applied
  expect(manifest.get("usr/bin/su")).toMatchObject({
    type: "file",
    mode: 0o4755,
    uid: 0,
    gid: 0,
    sha1: sha1("su-binary"),
    package: "demo",
  });
  expect(manifest.get("usr/bin/su2")).toMatchObject({
    type: "hardlink",
    target: "usr/bin/su",
    sha1: sha1("su-binary"),
  });
  expect(manifest.get("usr/bin/sh")).toMatchObject({
    type: "symlink",
    target: "/bin/busybox",
    sha1: sha1("/bin/busybox"),
  });
  expect(manifest.get("etc/shadow")).toMatchObject({ mode: 0o640, gid: 42 }); // no /etc/group in the root: the tar's number
  expect(manifest.get("var/empty")).toMatchObject({ type: "directory", mode: 0o555, uid: 33 });
  expect(dirs.map((d) => d.name)).toEqual(["etc", "usr", "usr/bin", "var/empty"]);
  expect(dirs[2]!.files.map((f) => f.name)).toEqual(["su", "su2", "sh"]);
});

test("owners resolve by name through the root's /etc/passwd and /etc/group, as apk's id cache does", async () => {
  const root = freshRoot();
  fs.mkdirSync(path.join(root, "etc"));
  fs.writeFileSync(
    path.join(root, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:102:nginx:/var/lib/nginx:/sbin/nologin\n",
  );
  fs.writeFileSync(path.join(root, "etc/group"), "root:x:0:root\nnginx:x:102:nginx\n");
  const manifest: FileManifest = new Map();
  await expandDataTar(
    tar([
      dir("var/"),
      dir("var/lib/"),
      dir("var/lib/nginx/", { uid: 999, gid: 999, uname: "nginx", gname: "nginx", mode: 0o750 }),
    ]),
    { root, manifest, packageName: "nginx", source: "nginx.apk" },
  );
  expect(manifest.get("var/lib/nginx")).toMatchObject({ uid: 101, gid: 102, mode: 0o750 });
});

test("a file's SHA-1 is its PAX record's when it has a well-formed one (as apk records it), else its content's", async () => {
  // The PAX record is inside the data member, which the signed datahash covers: apk-tools takes
  // it as the file's checksum without hashing the content, and so does the install.
  const root = freshRoot();
  const manifest: FileManifest = new Map();
  const stated = sha1("what the package says");
  const dirs = await expandDataTar(
    tar([
      file("stated", "real", { pax: { "APK-TOOLS.checksum.SHA1": stated.toUpperCase() } }),
      file("unstated", "content", { pax: {} }),
      file("malformed", "text", { pax: { "APK-TOOLS.checksum.SHA1": "not-hex" } }),
    ]),
    { root, manifest, packageName: "p", source: "p.apk" },
  );
  expect(manifest.get("stated")!.sha1).toBe(stated);
  expect(manifest.get("unstated")!.sha1).toBe(sha1("content"));
  expect(manifest.get("malformed")!.sha1).toBe(sha1("text"));
  expect(dirs[0]!.files.map((f) => [f.name, f.sha1])).toEqual([
    ["stated", stated],
    ["unstated", sha1("content")],
    ["malformed", sha1("text")],
  ]);
  expect(fs.readFileSync(path.join(root, "stated"), "utf8")).toBe("real");
});

describe("hostile entries are refused", () => {
  test.each([
    ["an absolute path", [file("/etc/passwd", "x")], /absolute path/],
    ["a .. path", [file("usr/../../escape", "x")], /contains "\.\."/],
    [
      "a write through a symlink that leaves the root",
      [link("evil", "../../.."), file("evil/escape", "x")],
      /leaves the root/,
    ],
    [
      "a write through a relative symlink chain out of the root",
      [dir("a/"), link("a/up", ".."), link("a/up2", "up/.."), file("a/up2/x", "x")],
      /leaves the root/,
    ],
    [
      "a hard link to a file outside the package",
      [{ name: "h", type: "hardlink", mode: 0o644, uid: 0, gid: 0, mtime: 0, linkTarget: "../etc/passwd" } as TarEntry],
      /contains "\.\."/,
    ],
    [
      "a hard link to nothing installed",
      [{ name: "h", type: "hardlink", mode: 0o644, uid: 0, gid: 0, mtime: 0, linkTarget: "etc/passwd" } as TarEntry],
      /no file installed before it/,
    ],
  ])("%s", async (_what, entries, error) => {
    const root = freshRoot();
    const outside = path.join(work, "escape");
    await expect(
      expandDataTar(tar(entries as TarEntry[]), { root, manifest: new Map(), packageName: "evil", source: "evil.apk" }),
    ).rejects.toThrow(error);
    expect(fs.existsSync(outside)).toBe(false);
  });

  test("an absolute symlink is followed inside the root (as the target system sees it), never on the host", async () => {
    const root = freshRoot();
    const manifest: FileManifest = new Map();
    await expandDataTar(tar([dir("usr/"), dir("usr/bin/"), link("bin", "/usr/bin"), file("bin/tool", "t")]), {
      root,
      manifest,
      packageName: "p",
      source: "p.apk",
    });
    expect(fs.readFileSync(path.join(root, "usr/bin/tool"), "utf8")).toBe("t");
    expect(fs.existsSync("/usr/bin/tool")).toBe(false);
  });

  test("overwriting another package's file needs replaces", async () => {
    const root = freshRoot();
    const manifest: FileManifest = new Map();
    await expandDataTar(tar([file("shared", "a")]), { root, manifest, packageName: "a", source: "a.apk" });
    await expect(
      expandDataTar(tar([file("shared", "b")]), { root, manifest, packageName: "b", source: "b.apk" }),
    ).rejects.toThrow(/b\.apk: trying to overwrite shared owned by a/);
    await expandDataTar(tar([file("shared", "c")]), {
      root,
      manifest,
      packageName: "c",
      source: "c.apk",
      mayOverwrite: (owner) => owner === "a",
    });
    expect(manifest.get("shared")!.package).toBe("c");
    expect(fs.readFileSync(path.join(root, "shared"), "utf8")).toBe("c");
  });

  test("a truncated data tar is refused", async () => {
    const data = tar([file("big", "x".repeat(2000))]);
    await expect(
      expandDataTar(data.subarray(0, 1100), {
        root: freshRoot(),
        manifest: new Map(),
        packageName: "t",
        source: "t.apk",
      }),
    ).rejects.toThrow(/t\.apk \(data member\).*truncated/);
  });
});

(process.getuid?.() === 0 ? test : test.skip)(
  "as root, ownership goes on disk: owners, setuid and mtimes, and a root file in another package's setgid directory stays root's",
  async () => {
    const root = freshRoot();
    const manifest: FileManifest = new Map();
    const opts = { root, manifest, applyOwnership: true };
    await expandDataTar(tar([dir("srv/", { mode: 0o2775, gid: 42 }), file("srv/owned", "o", { uid: 7, gid: 8 })]), {
      ...opts,
      packageName: "a",
      source: "a.apk",
    });
    await expandDataTar(
      tar([file("srv/plain", "p", { mtime: 1_600_000_000 }), file("srv/su", "s", { mode: 0o4755, uid: 0, gid: 0 })]),
      { ...opts, packageName: "b", source: "b.apk" },
    );
    // On disk an owner is its sandbox host id (sandbox-ids.ts); read back, it is the package's.
    const st = (rel: string) => {
      const s = fs.lstatSync(path.join(root, rel));
      return { mode: s.mode, uid: fromHostId(s.uid), gid: fromHostId(s.gid), mtimeMs: s.mtimeMs, hostUid: s.uid };
    };
    expect(st("srv/owned").hostUid).toBe(SANDBOX_ID_BASE + 7);
    expect(st("srv").mode & 0o7777).toBe(0o2775);
    expect(st("srv").gid).toBe(42);
    expect({ uid: st("srv/owned").uid, gid: st("srv/owned").gid }).toEqual({ uid: 7, gid: 8 });
    // The kernel gives a file made in a setgid directory that directory's group; apk gives it the package's (0).
    expect({ uid: st("srv/plain").uid, gid: st("srv/plain").gid }).toEqual({ uid: 0, gid: 0 });
    expect(st("srv/plain").mtimeMs).toBe(1_600_000_000_000);
    expect(st("srv/su").mode & 0o7777).toBe(0o4755);
    expect(st("srv/su").gid).toBe(0);
  },
);

test("a feed that reuses its piece's memory after each sink call: files cut across pieces arrive whole, with their SHA-1s and modes", async () => {
  // As PackageFile.streamDataTar feeds: one buffer, refilled (here first scrambled) once the sink returns.
  const long = (seed: number, bytes: number) =>
    Array.from({ length: bytes }, (_, i) => String.fromCharCode(97 + ((i * 7 + seed) % 26))).join("");
  const entries = [
    dir("data/"),
    ...Array.from({ length: 24 }, (_, i) =>
      file(`data/f${i}`, long(i, 700 + i * 613), { mode: i % 2 ? 0o600 : 0o755, pax: {} }),
    ),
    // A PAX record long enough to be cut across pieces, and a file over the streamed size.
    file("data/named", "x", { pax: { "APK-TOOLS.checksum.SHA1": sha1("x"), comment: "y".repeat(3000) } }),
    file("data/big", long(99, (1 << 20) + 4099)),
  ];
  const data = tar(entries);
  const root = freshRoot();
  const manifest: FileManifest = new Map();
  const piece = Buffer.alloc(1000);
  await expandDataTar(
    async (sink) => {
      for (let at = 0; at < data.length; at += piece.length) {
        const n = data.copy(piece, 0, at, Math.min(data.length, at + piece.length));
        await sink(piece.subarray(0, n));
        piece.fill(0x5a);
      }
    },
    { root, manifest, packageName: "p", source: "p.apk" },
  );
  for (const e of entries) {
    if (e.type !== "file") continue;
    const rel = e.name;
    expect(fs.readFileSync(path.join(root, rel)).equals(e.content!)).toBe(true);
    expect(manifest.get(rel)!.sha1).toBe(sha1(e.content!));
    expect(fs.statSync(path.join(root, rel)).mode & 0o777).toBe((e.mode & 0o777) | 0o200);
  }
});
