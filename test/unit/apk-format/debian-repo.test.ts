import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildDebianRepo, ramroot, type DebianRepo } from "../../fixtures/debian-repo";
import { generateKeyPair, loadKeysDir } from "../../../provider/apk/signature";
import { readIndexArchive } from "../../../provider/apk/index-archive";
import { parseApkindex } from "../../../provider/apk/apkindex";
import { loadRepositories } from "../../../provider/apk/repository";
import { resolvePackages } from "../../../provider/apk/solver";
import { installPackages } from "../../../provider/apk/install";
import { readTar } from "../../../provider/apk/tar-reader";

jest.setTimeout(180_000);

let work: string;
let repo: DebianRepo;
let keysDir: string;

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-debian-repo-"));
  keysDir = path.join(work, "keys");
  await ramroot("key", "generate", "--dir", path.join(work, "private"), "--name", "ramroot-test-1", "--bits", "2048");
  fs.mkdirSync(keysDir);
  fs.copyFileSync(path.join(work, "private", "ramroot-test-1.rsa.pub"), path.join(keysDir, "ramroot-test-1.rsa.pub"));
  repo = await buildDebianRepo(path.join(work, "build"), {
    privateKeyPath: path.join(work, "private", "ramroot-test-1.rsa"),
    keyName: "ramroot-test-1.rsa.pub",
  });
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("the repository index is signed by the test key and lists every package with its checksum", () => {
  const index = readIndexArchive(fs.readFileSync(path.join(repo.archDir, "APKINDEX.tar.gz")), {
    keys: loadKeysDir(keysDir),
    source: "index",
  });
  expect(index.signer).toBe("ramroot-test-1.rsa.pub");
  const records = parseApkindex(index.apkindexText);
  expect(records.map((r) => `${r.name}-${r.version}`)).toEqual([
    "alpine-baselayout-3.6.8-r1",
    "alpine-baselayout-data-3.6.8-r1",
    "busybox-1.35.0-r0",
    "ramroot-adduser-1.0-r0",
  ]);
  expect(records.every((r) => /^Q1[A-Za-z0-9+/]{27}=$/.test(r.checksum!))).toBe(true);
  expect(records[0]!.depends).toEqual(["alpine-baselayout-data=3.6.8-r1", "busybox", "cmd:adduser"]);
});

test("`ramroot apk verify` accepts a package against the index and refuses it with the wrong keys", async () => {
  const file = path.join(repo.archDir, "busybox-1.35.0-r0.apk");
  await ramroot("apk", "verify", "--keys", keysDir, "--index", path.join(repo.archDir, "APKINDEX.tar.gz"), file);
  const empty = path.join(work, "no-keys");
  fs.mkdirSync(empty, { recursive: true });
  await expect(ramroot("apk", "verify", "--keys", empty, file)).rejects.toThrow(
    /busybox-1\.35\.0-r0\.apk: not signed by a trusted key/,
  );
  // --allow-untrusted needs no keys (integrity only); without either, the error says what to give
  expect(await ramroot("apk", "verify", "--allow-untrusted", file)).toMatch(
    /OK busybox-1\.35\.0-r0, UNTRUSTED \(allowed\)/,
  );
  await expect(ramroot("apk", "verify", file)).rejects.toThrow(/give --keys DIR .*or --allow-untrusted/);
});

test("`ramroot apk install` resolves and installs with scripts: installed db, applet links, the user from pre-install", async () => {
  const root = path.join(work, "root");
  await ramroot(
    "apk",
    "install",
    "--root",
    root,
    "--repository",
    repo.repository,
    "--keys",
    keysDir,
    "--arch",
    "x86_64",
    "--cache-dir",
    path.join(work, "cache"),
    "alpine-baselayout",
  );

  // Applet links made by busybox's post-install, as Alpine's.
  expect(fs.readlinkSync(path.join(root, "bin/sh"))).toBe("/bin/busybox");
  expect(fs.readlinkSync(path.join(root, "bin/ls"))).toBe("/bin/busybox");
  expect(fs.lstatSync(path.join(root, "usr/bin/env")).isSymbolicLink()).toBe(true);
  // The user and group alpine-baselayout's pre-install added with busybox adduser/addgroup.
  // The root is laid out as apk add --initdb does: its /dev nodes (as root) and a sticky /tmp stay.
  if (process.getuid?.() === 0)
    for (const node of ["null", "urandom", "console"])
      expect(fs.lstatSync(path.join(root, "dev", node)).isCharacterDevice()).toBe(true);
  expect(fs.statSync(path.join(root, "tmp")).mode & 0o7777).toBe(0o1777);
  const passwd = fs.readFileSync(path.join(root, "etc/passwd"), "utf8");
  const user = /^ramroot:x:(\d+):(\d+):ramroot:\/var\/lib\/ramroot:\/sbin\/nologin$/m.exec(passwd);
  expect(user).not.toBeNull();
  expect(fs.readFileSync(path.join(root, "etc/group"), "utf8")).toMatch(new RegExp(`^ramroot:x:${user![2]}:`, "m"));

  // The installed db, in apk's format: header, F:/M:, R:/a:/Z:, ownership resolved by name.
  const db = fs.readFileSync(path.join(root, "lib/apk/db/installed"), "utf8");
  const blocks = db.split("\n\n").filter((b) => b.trim() !== "");
  expect(blocks.map((b) => /^P:(.*)$/m.exec(b)![1])).toEqual([
    "alpine-baselayout",
    "alpine-baselayout-data",
    "busybox",
    "ramroot-adduser",
  ]);
  const bb = blocks[2]!;
  expect(bb).toMatch(
    /^C:Q1.{28}\nP:busybox\nV:1\.35\.0-r0\nA:x86_64\nS:\d+\nI:\d+\nT:.*\nU:\nL:GPL-2\.0-only\no:busybox\nt:1700000000\np:\/bin\/sh cmd:busybox=1\.35\.0-r0\n/,
  );
  expect(bb).toMatch(/\nF:bin\nR:busybox\na:0:0:755\nZ:Q1[A-Za-z0-9+/]{27}=\n/);
  expect(`${blocks[0]}\n`).toContain(`\nF:var/lib/ramroot\nM:${user![1]}:${user![2]}:750\n`);
  expect(`${blocks[1]}\n`).toMatch(
    /\nF:etc\nR:group\nZ:Q1.{28}\nR:hostname\nZ:Q1.{28}\nR:passwd\nZ:Q1.{28}\nR:shadow\na:0:42:640\nZ:Q1.{28}\n/,
  );

  // The rest of the database.
  expect(fs.readFileSync(path.join(root, "etc/apk/world"), "utf8")).toBe("alpine-baselayout\n");
  expect(fs.readFileSync(path.join(root, "etc/apk/arch"), "utf8")).toBe("x86_64\n");
  // `apk add --root R --initdb --repository X` writes no repositories file; neither does ramroot apk install.
  expect(fs.existsSync(path.join(root, "etc/apk/repositories"))).toBe(false);
  expect(fs.readdirSync(path.join(root, "etc/apk/keys"))).toEqual(["ramroot-test-1.rsa.pub"]);
  const scripts = readTar(fs.readFileSync(path.join(root, "lib/apk/db/scripts.tar")), "scripts.tar").map((e) =>
    e.name.replace(/\.Q1[A-Za-z0-9+/]{27}=\./, ".<Q1 id>."),
  );
  // apk 2.14's names (the package identity as Q1 + base64), in install order
  expect(scripts).toEqual([
    "busybox-1.35.0-r0.<Q1 id>.post-install",
    "busybox-1.35.0-r0.<Q1 id>.trigger",
    "alpine-baselayout-3.6.8-r1.<Q1 id>.pre-install",
  ]);
  expect(fs.readFileSync(path.join(root, "lib/apk/db/triggers"), "utf8")).toMatch(
    /^Q1.{28} \/bin \/usr\/bin \/sbin \/usr\/sbin\n$/,
  );
  // apk leaves lib/apk/exec (0700), empty once the scripts ran.
  expect(fs.readdirSync(path.join(root, "lib/apk/exec"))).toEqual([]);
  expect(fs.statSync(path.join(root, "lib/apk/exec")).mode & 0o7777).toBe(0o700);
});

test("for another architecture the scripts are not run but reported, and the files and db are still there", async () => {
  const keys = loadKeysDir(keysDir);
  const repos = await loadRepositories([repo.repository], { arch: "x86_64", keys });
  const lock = resolvePackages(
    ["alpine-baselayout"],
    repos.flatMap((r) => r.packages),
    { arch: "x86_64" },
  );
  const root = path.join(work, "foreign");
  // The packages are x86_64; pretend the image is aarch64 to see what happens when the host cannot run it.
  const result = await installPackages({
    root,
    lock,
    arch: "aarch64",
    keys,
    cacheDir: path.join(work, "cache"),
    locate: (r) => path.join(repo.archDir, `${r.name}-${r.version}.apk`),
  });
  expect(result.skippedScripts.map((s) => `${s.package}.${s.script}`)).toEqual([
    "busybox.post-install",
    "alpine-baselayout.pre-install",
    "busybox.trigger",
  ]);
  expect(result.skippedScripts[0]!.detail).toMatch(/target architecture aarch64 differs from the host's x86_64/);
  expect(fs.existsSync(path.join(root, "bin/sh"))).toBe(false);
  expect(result.manifest.get("bin/busybox")).toMatchObject({
    type: "file",
    mode: 0o755,
    uid: 0,
    gid: 0,
    package: "busybox",
  });
  expect(result.manifest.get("etc/shadow")).toMatchObject({ mode: 0o640, gid: 42 });
  expect(fs.readFileSync(path.join(root, "lib/apk/db/installed"), "utf8")).toContain("P:busybox\n");
});
