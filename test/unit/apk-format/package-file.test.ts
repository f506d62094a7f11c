import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { buildPackage } from "../../../provider/apk/package-builder";
import { readPackageFile, q1Checksum } from "../../../provider/apk/package-file";
import { splitGzipMembers } from "../../../provider/apk/gzip-members";
import { generateKeyPair, loadKeysDir, type GeneratedKeyPair } from "../../../provider/apk/signature";
import { readTar } from "../../../provider/apk/tar-reader";

let work: string;
let key: GeneratedKeyPair;
let other: GeneratedKeyPair;
let keys: Map<string, Buffer>;
let tree: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-apk-pkg-"));
  key = generateKeyPair(path.join(work, "private"), "builder-1", { bits: 2048 });
  other = generateKeyPair(path.join(work, "private"), "other-2", { bits: 2048 });
  fs.mkdirSync(path.join(work, "keys"));
  fs.copyFileSync(key.publicKeyPath, path.join(work, "keys", key.keyName));
  keys = loadKeysDir(path.join(work, "keys"));
  tree = path.join(work, "tree");
  fs.mkdirSync(path.join(tree, "usr/bin"), { recursive: true });
  fs.mkdirSync(path.join(tree, "etc"), { recursive: true });
  fs.writeFileSync(path.join(tree, "usr/bin/hello"), "#!/bin/sh\necho hello\n", { mode: 0o755 });
  fs.writeFileSync(path.join(tree, "etc/hello.conf"), "greeting=hi\n", { mode: 0o640 });
  fs.symlinkSync("hello", path.join(tree, "usr/bin/hi"));
  fs.linkSync(path.join(tree, "usr/bin/hello"), path.join(tree, "usr/bin/hello2"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const spec = {
  name: "hello",
  version: "1.0-r0",
  arch: "x86_64",
  description: "says hello",
  license: "MIT",
  depends: ["busybox", "so:libc.musl-x86_64.so.1"],
  provides: ["cmd:hello=1.0-r0"],
  scripts: { "post-install": "#!/bin/sh\necho installed\n" },
  buildTime: 1700000000,
};
const signer = () => ({ keyName: key.keyName, privateKeyPem: key.privateKeyPem });

test("a built package has abuild's member layout, PAX checksums, datahash and a signature over the control member", () => {
  const built = buildPackage(tree, spec, signer());
  expect(built.fileName).toBe("hello-1.0-r0.apk");
  expect(buildPackage(tree, spec, signer()).apk).toEqual(built.apk); // deterministic
  const members = splitGzipMembers(built.apk, "hello.apk");
  expect(members).toHaveLength(3);
  const control = readTar(members[1]!.content, "control");
  expect(control.map((e) => e.name)).toEqual([".PKGINFO", ".post-install"]);
  const pkginfo = control[0]!.content.toString();
  expect(pkginfo).toContain("pkgname = hello\npkgver = 1.0-r0\n");
  expect(pkginfo).toContain("depend = busybox\ndepend = so:libc.musl-x86_64.so.1\nprovides = cmd:hello=1.0-r0\n");
  expect(pkginfo).toContain(`datahash = ${createHash("sha256").update(members[2]!.raw).digest("hex")}\n`);
  const data = readTar(members[2]!.content, "data");
  expect(data.map((e) => `${e.type} ${e.name}`)).toEqual([
    "directory etc/",
    "file etc/hello.conf",
    "directory usr/",
    "directory usr/bin/",
    "file usr/bin/hello",
    "hardlink usr/bin/hello2",
    "symlink usr/bin/hi",
  ]);
  const hello = data.find((e) => e.name === "usr/bin/hello")!;
  expect(hello.pax["APK-TOOLS.checksum.SHA1"]).toBe(createHash("sha1").update("#!/bin/sh\necho hello\n").digest("hex"));
  expect(hello.mode).toBe(0o755);
  expect(data.find((e) => e.name === "usr/bin/hi")!.pax["APK-TOOLS.checksum.SHA1"]).toBe(
    createHash("sha1").update("hello").digest("hex"),
  );
  expect(data.find((e) => e.name === "etc/hello.conf")!.mode).toBe(0o640);
  expect(data.every((e) => e.mtime === 1700000000 && e.uid === 0 && e.gid === 0)).toBe(true);
  // GNU tar reads the whole .apk as one archive, as apk's own reader does.
  const file = path.join(work, built.fileName);
  fs.writeFileSync(file, built.apk);
  const listing = execFileSync("tar", ["--warning=no-unknown-keyword", "-tzf", file], { encoding: "utf8" })
    .trim()
    .split("\n");
  expect(listing.slice(0, 3)).toEqual([`.SIGN.RSA.${key.keyName}`, ".PKGINFO", ".post-install"]);
  expect(listing).toContain("usr/bin/hello");
});

test("reading checks the signature, computes the index checksum and returns scripts and the record", () => {
  const built = buildPackage(tree, spec, signer());
  const pkg = readPackageFile(built.apk, { source: "hello.apk", keys });
  const members = splitGzipMembers(built.apk, "x");
  expect(pkg.checksum).toBe(q1Checksum(members[1]!.raw));
  expect(pkg.trust).toBe("signature");
  expect(pkg.signer).toBe(key.keyName);
  expect(pkg.record).toMatchObject({
    name: "hello",
    version: "1.0-r0",
    arch: "x86_64",
    size: built.apk.length,
    description: "says hello",
    license: "MIT",
    buildTime: 1700000000,
    depends: ["busybox", "so:libc.musl-x86_64.so.1"],
    provides: ["cmd:hello=1.0-r0"],
    origin: "hello",
    installedSize: "#!/bin/sh\necho hello\n".length + "greeting=hi\n".length, // the hard link counts once
  });
  expect(pkg.scripts.get("post-install")!.toString()).toBe("#!/bin/sh\necho installed\n");
  // Against an index record: identity by checksum.
  expect(readPackageFile(built.apk, { source: "hello.apk", keys: new Map(), expected: pkg.record }).trust).toBe(
    "index",
  );
});

test("an unsigned package is refused without an index record unless untrusted is allowed", () => {
  const unsigned = buildPackage(tree, spec).apk;
  expect(splitGzipMembers(unsigned, "u")).toHaveLength(2);
  expect(() => readPackageFile(unsigned, { source: "u.apk", keys })).toThrow(/u\.apk: not signed by a trusted key/);
  expect(readPackageFile(unsigned, { source: "u.apk", keys, allowUntrusted: true }).trust).toBe("untrusted");
});

test("a signature by another key is skipped (untrusted), a forged one under a trusted name is refused", () => {
  const byOther = buildPackage(tree, spec, { keyName: other.keyName, privateKeyPem: other.privateKeyPem }).apk;
  expect(() => readPackageFile(byOther, { source: "o.apk", keys })).toThrow(
    /o\.apk: not signed by a trusted key \(.*other-2\.rsa\.pub: unknown key/,
  );
  const forged = buildPackage(tree, spec, { keyName: key.keyName, privateKeyPem: other.privateKeyPem }).apk;
  expect(() => readPackageFile(forged, { source: "f.apk", keys, allowUntrusted: true })).toThrow(
    /f\.apk: package signature does not verify/,
  );
});

test("a data member swapped for another is caught by datahash; a control change by the index checksum", () => {
  const a = splitGzipMembers(buildPackage(tree, spec, signer()).apk, "a");
  fs.writeFileSync(path.join(tree, "etc/extra"), "x");
  const b = splitGzipMembers(buildPackage(tree, spec, signer()).apk, "b");
  fs.rmSync(path.join(tree, "etc/extra"));
  const swapped = Buffer.concat([a[0]!.raw, a[1]!.raw, b[2]!.raw]);
  expect(() => readPackageFile(swapped, { source: "swap.apk", keys })).toThrow(
    /swap\.apk: data member SHA-256 is [0-9a-f]{64} but \.PKGINFO datahash says/,
  );
  const good = readPackageFile(Buffer.concat([a[0]!.raw, a[1]!.raw, a[2]!.raw]), { source: "a", keys });
  const other = readPackageFile(Buffer.concat([b[0]!.raw, b[1]!.raw, b[2]!.raw]), { source: "b", keys });
  expect(() =>
    readPackageFile(Buffer.concat([b[0]!.raw, b[1]!.raw, b[2]!.raw]), { source: "b.apk", keys, expected: good.record }),
  ).toThrow(new RegExp(`b\\.apk: control checksum is ${other.checksum.replace(/[+/]/g, "\\$&")} but the index says`));
  const renamed = { ...good.record, version: "2.0-r0" };
  expect(() =>
    readPackageFile(Buffer.concat([a[0]!.raw, a[1]!.raw, a[2]!.raw]), { source: "a.apk", keys, expected: renamed }),
  ).toThrow(/a\.apk: the file is hello-1\.0-r0 but the index record is hello-2\.0-r0/);
});

test("truncated and corrupt downloads are refused naming the file", () => {
  const apk = buildPackage(tree, spec, signer()).apk;
  for (const cut of [5, 300, apk.length - 1, apk.length - 100]) {
    expect(() => readPackageFile(apk.subarray(0, cut), { source: "cut.apk", keys })).toThrow(/cut\.apk/);
  }
  const flipped = Buffer.from(apk);
  flipped[flipped.length - 30]! ^= 0x40;
  expect(() => readPackageFile(flipped, { source: "flip.apk", keys })).toThrow(/flip\.apk/);
});

test("bad package metadata is refused naming the field", () => {
  expect(() => buildPackage(tree, { ...spec, name: "-bad" })).toThrow(/package name "-bad" is not accepted/);
  expect(() => buildPackage(tree, { ...spec, version: "one" })).toThrow(
    /package version "one" is not accepted: an apk version/,
  );
  expect(() => buildPackage(tree, { ...spec, depends: ["a b"] })).toThrow(/depends entry "a b" is not accepted/);
  expect(() => buildPackage(path.join(work, "nope"), spec)).toThrow(/directory .*nope.* does not exist/);
});
