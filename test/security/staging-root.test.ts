/**
 * Every step after extraction writes into the staging root through StagingRoot: symlinks a
 * package (or the user's overlay) put in the tree are followed only inside the root. Canary
 * files outside the root keep their bytes, modes and presence.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RootEscapeError, StagingRoot } from "../../provider/apk/staging-root";
import { writeApkDatabase } from "../../provider/apk/installed-db";
import { writeOverlay, inlineEntries } from "../../provider/image/overlay";
import { trimFirmware } from "../../provider/image/firmware";
import { splitBoot } from "../../provider/image/boot-split";
import { enableServices } from "../../provider/image/services";

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sec-root-"));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** A host directory with canary files; returns a snapshot function of everything in it. */
function plantCanaries(dir: string): () => string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "canary"), "host bytes\n", { mode: 0o600 });
  fs.chmodSync(path.join(dir, "canary"), 0o600);
  fs.writeFileSync(path.join(dir, "keep.bin"), "firmware the host needs\n");
  fs.writeFileSync(path.join(dir, "vmlinuz-lts"), "the host's kernel\n");
  fs.writeFileSync(path.join(dir, "other.bin"), "another host file\n");
  return () =>
    fs
      .readdirSync(dir)
      .sort()
      .map((n) => {
        const st = fs.lstatSync(path.join(dir, n));
        return `${n} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? fs.readFileSync(path.join(dir, n), "hex") : "-"}`;
      })
      .join("\n");
}

function rootWithLinks(links: Record<string, string>): string {
  const root = path.join(work, "root");
  for (const [rel, target] of Object.entries(links)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.symlinkSync(target, path.join(root, rel));
  }
  fs.mkdirSync(root, { recursive: true });
  return root;
}

test("resolve follows symlinks inside the root and refuses climbing out", () => {
  const root = rootWithLinks({ bin: "/usr/bin", up: "../..", abs: "/", "usr/lib/x": "../../etc" });
  fs.mkdirSync(path.join(root, "usr/bin"), { recursive: true });
  const s = new StagingRoot(root);
  expect(s.resolve("bin/sh")).toBe(path.join(root, "usr/bin/sh"));
  expect(s.resolve("abs/etc/passwd")).toBe(path.join(root, "etc/passwd"));
  expect(s.resolve("usr/lib/x/y", { follow: true })).toBe(path.join(root, "etc/y"));
  expect(s.resolve("bin", { follow: false })).toBe(path.join(root, "bin"));
  expect(() => s.resolve("up/x")).toThrow(RootEscapeError);
  expect(() => s.resolve("../x")).toThrow(/leaves the root/);
  expect(() => s.writeFile("/", "x")).toThrow(/names the root itself/);
  expect(() => s.remove(".")).toThrow(/root itself/);
});

test("the apk database written through lib/apk/db and etc/apk links pointing at the host stays in the root", () => {
  const outside = path.join(work, "host");
  const snapshot = plantCanaries(outside);
  const before = snapshot();
  const root = rootWithLinks({
    "lib/apk/db": "../../../host",
    "etc/apk/world": path.join(outside, "canary"),
    "etc/apk/arch": "../../../host/canary",
  });
  // lib/apk/db -> ../../../host climbs above the root: refused, nothing written.
  expect(() =>
    writeApkDatabase(root, { packages: [], world: ["evil"], arch: "x86_64", repositories: [], keys: new Map() }),
  ).toThrow(/leaves the root/);
  expect(snapshot()).toBe(before);
  fs.unlinkSync(path.join(root, "lib/apk/db"));
  fs.symlinkSync(outside, path.join(root, "lib/apk/db"));
  writeApkDatabase(root, { packages: [], world: ["evil"], arch: "x86_64", repositories: [], keys: new Map() });
  expect(snapshot()).toBe(before);
  // The absolute link lib/apk/db -> <outside> now leads to <root><outside>; the world link was replaced by a file.
  expect(fs.existsSync(path.join(root, outside, "installed"))).toBe(true);
  // Links standing where a file is written are replaced, never written through.
  expect(fs.lstatSync(path.join(root, "etc/apk/world")).isFile()).toBe(true);
  expect(fs.lstatSync(path.join(root, "etc/apk/arch")).isFile()).toBe(true);
  expect(fs.readFileSync(path.join(root, "etc/apk/world"), "utf8")).toBe("evil\n");
});

test("overlay symlinks are copied as symlinks; an inline setuid file behind one lands in the root", () => {
  const outside = path.join(work, "host");
  const snapshot = plantCanaries(outside);
  const before = snapshot();
  const overlayDir = path.join(work, "overlay");
  fs.mkdirSync(path.join(overlayDir, "etc"), { recursive: true });
  fs.symlinkSync(outside, path.join(overlayDir, "etc/evil"));
  const root = rootWithLinks({ "etc/hostname": path.join(outside, "canary") });
  writeOverlay(root, [
    { path: "etc", type: "dir", mode: 0o755 },
    { path: "etc/evil", type: "symlink", mode: 0o777, linkTarget: outside },
    ...inlineEntries([
      { path: "/etc/evil/suid", content: "#!/bin/sh\n", mode: 0o4755 },
      { path: "/etc/hostname", content: "box\n" },
    ]),
  ]);
  expect(snapshot()).toBe(before);
  expect(fs.readlinkSync(path.join(root, "etc/evil"))).toBe(outside);
  expect(fs.statSync(path.join(root, outside, "suid")).mode & 0o7777).toBe(0o4755);
  expect(fs.lstatSync(path.join(root, "etc/hostname")).isFile()).toBe(true);
});

test("trimFirmware through lib/firmware -> host dir deletes nothing on the host", () => {
  const outside = path.join(work, "host");
  const snapshot = plantCanaries(outside);
  const before = snapshot();
  const root = rootWithLinks({ "lib/firmware": outside });
  const trim = trimFirmware(root, ["keep.bin"]);
  expect(trim.dropped).toBe(0);
  expect(snapshot()).toBe(before);
  // A relative link that climbs out is refused rather than followed.
  fs.unlinkSync(path.join(root, "lib/firmware"));
  fs.symlinkSync("../../host", path.join(root, "lib/firmware"));
  expect(() => trimFirmware(root, ["keep.bin"])).toThrow(/leaves the root/);
  expect(snapshot()).toBe(before);
});

test("splitBoot through boot -> host dir does not copy the host's kernel, and services links stay inside", () => {
  const outside = path.join(work, "host");
  const snapshot = plantCanaries(outside);
  const before = snapshot();
  const root = rootWithLinks({ boot: outside, "etc/runlevels": outside, "etc/init.d/sshd": "/bin/true" });
  fs.mkdirSync(path.join(root, "bin"));
  fs.writeFileSync(path.join(root, "bin/true"), "");
  const out = path.join(work, "out");
  expect(() => splitBoot(root, out, { kernelFlavor: "lts", microcode: "none" })).toThrow(
    /no package installed \/boot\/vmlinuz-lts/,
  );
  enableServices(root, { sysinit: [], boot: [], default: [{ name: "sshd", required: true }], shutdown: [] });
  expect(snapshot()).toBe(before);
  expect(fs.readlinkSync(path.join(root, outside, "default/sshd"))).toBe("/etc/init.d/sshd");
  expect(fs.existsSync(path.join(out, "vmlinuz"))).toBe(false);
});
