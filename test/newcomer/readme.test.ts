import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { startSshd, type TestSshd } from "../boot/sshd";
import { freshShell, type FreshShell, type ShellOptions } from "../fixtures/fresh-shell";

// A newcomer's first hour, as the README tells it: a fresh clone of this repository, then the
// README's commands in order, in a shell, checking the lines the README promises. It builds,
// boots and deploys for real (three `npm start`s); the Pulumi engine the setup built before is
// reused (its cache), everything else is the clone's own: its state, its demo repository and
// disk, a private image cache.
jest.setTimeout(3_600_000);

const REPO_ROOT = path.resolve(__dirname, "..", "..");

let work: string;
let clone: string;
let sshd: TestSshd | undefined;
let shell: FreshShell;
const sh = (line: string, opts?: ShellOptions) => shell.sh(line, opts);
const ok = (line: string, opts?: ShellOptions) => shell.ok(line, opts);

/** The preview part of an `npm start` (before the update runs). */
const previewOf = (out: string) => out.slice(out.indexOf("Previewing update (demo)"), out.indexOf("Updating (demo)"));

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-newcomer-"));
  clone = path.join(work, "ramroot");
  execFileSync("git", ["clone", "--quiet", REPO_ROOT, clone]);
  // the suite's own check stays on (jest.config.js): every image the demo builds is read back
  // through cpio-stream and compared with its staging tree, and the update says so
  shell = freshShell(clone, { RAMROOT_IMAGE_CACHE: path.join(work, "images"), RAMROOT_CHECK_ARCHIVES: "1" });
});

afterAll(async () => {
  await sshd?.stop();
  console.log(`newcomer test, step by step:\n${shell.timings.join("\n")}`);
  fs.rmSync(work, { recursive: true, force: true });
});

test("the README's commands on a fresh clone do what the README says", async () => {
  // "npm start works with no internet and no accounts ... the machine prints RAMROOT-DEMO image=<imageId> message=<root/etc/ramroot/message>"
  const first = await ok("npm start");
  expect(previewOf(first)).toContain("+ ramroot:index:AlpineImage: (create)");
  expect(previewOf(first)).toMatch(/etc\/ramroot\/message *: "file 644 [0-9a-f]{12}"/);
  expect(first).toMatch(/seen: RAMROOT-DEMO image=[0-9a-f]{64} message=hello from root\/ in git/);
  expect(first).toMatch(/^slot a +image [0-9a-f]{12} .*\[DEFAULT\]$/m);
  expect(first).toContain("then npm start again (slot b is written, DEFAULT flips to it)");
  expect(fs.existsSync(path.join(clone, ".ramroot", "demo", "disk.img"))).toBe(true);

  // "source .ramroot/env.sh; npx ramroot --help; PULUMI_CONFIG_PASSPHRASE_FILE=... npx pulumi preview --diff --stack demo"
  const help = await ok("source .ramroot/env.sh && npx ramroot --help");
  for (const verb of ["build", "image", "status", "history", "rollback", "qemu"])
    expect(help).toMatch(new RegExp(`^  ${verb}\\b`, "m"));
  const preview = await ok(
    "source .ramroot/env.sh && PULUMI_CONFIG_PASSPHRASE_FILE=.ramroot/passphrases/demo npx pulumi preview --diff --stack demo",
  );
  expect(preview).toMatch(/Resources:\n\s+\d+ unchanged/);

  // "Run npm start again before changing anything and it says so": nothing built, written or booted
  const unchanged = await ok("npm start", { env: { RAMROOT_SKIP_SMOKE: "1" } });
  expect(unchanged).toContain("[demo] nothing changed since the last deployment");
  expect(unchanged).not.toContain("booting .ramroot/demo/disk.img");
  expect(unchanged).toContain("then npm start again (slot b is written, DEFAULT flips to it)");

  // "Edit root/etc/ramroot/message (or add hello-ramroot to the packages) and run npm start again:
  // the preview lists the file and the package, the new image goes to slot b, and DEFAULT flips"
  fs.writeFileSync(path.join(clone, "root", "etc", "ramroot", "message"), "edited by a newcomer\n");
  const stackFile = path.join(clone, "stacks", "Pulumi.demo.yaml");
  fs.writeFileSync(
    stackFile,
    fs
      .readFileSync(stackFile, "utf8")
      .replace("      - ramroot-init\n", "      - ramroot-init\n      - hello-ramroot\n"),
  );
  const second = await ok("npm start", { env: { RAMROOT_SKIP_SMOKE: "1" } });
  const preview2 = previewOf(second);
  expect(preview2).toMatch(/\+ hello-ramroot *: "1\.0-r0"/);
  expect(preview2).toMatch(/~ etc\/ramroot\/message *: "file 644 [0-9a-f]{12}" => "file 644 [0-9a-f]{12}"/);
  expect(preview2).toMatch(/\+ ramroot:index:BootSlot: \(create\)[\s\S]*slot +: "b"/);
  expect(preview2).toMatch(/~ defaultLabel *: "a" => "b"/);
  // "the update ends with what changed inside the image, path by path"
  expect(second).toMatch(/files changed from the previous image: \+\d+ -\d+ ~\d+ paths, 1 package changed/);
  expect(second).toMatch(/\+ usr\/share\/hello-ramroot\/greeting {2}file 0644 0:0/);
  // every archive the build packed was read back as packed (RAMROOT_CHECK_ARCHIVES)
  expect(second).toMatch(/^ *\d+ archives? read back through cpio-stream, as packed$/m);
  expect(second).toMatch(/seen: RAMROOT-DEMO image=[0-9a-f]{64} message=edited by a newcomer/);
  expect(second).toMatch(/^DEFAULT +b\b/m);
  expect(second).toContain("then npm start again (slot a is written, DEFAULT flips to it)");

  // "npx ramroot image diff --slot a --slot b shows the two slots' difference", from root/ too
  // ("relative paths are relative to the project directory ... also from a directory inside it")
  const diff = await ok("source ../.ramroot/env.sh && npx ramroot image diff --slot a --slot b", {
    cwd: path.join(clone, "root"),
  });
  expect(diff).toContain("+ package hello-ramroot 1.0-r0");
  expect(diff).toMatch(
    /^hello-ramroot:\n(?: {2}.*\n)*? {2}\+ usr\/share\/hello-ramroot\/greeting {2}file 0644 0:0 \d+ [0-9a-f]{12}$/m,
  );
  expect(diff).toMatch(/^ {2}~ etc\/ramroot\/message {2}size 24 -> 21, sha256 [0-9a-f]{12} -> [0-9a-f]{12}$/m);

  // "`update:N` (or `--update N`: the image stack update N deployed, from the local image cache
  // or the slot holding it)": update 1 is the first npm start, 2 the no-change one, 3 the edit
  const byUpdate = await ok("source .ramroot/env.sh && npx ramroot image diff --stack demo --update 1 --update 3");
  expect(byUpdate).toMatch(
    /^--- update 1: plan [0-9a-f]{12} \(image cache\)\n\+\+\+ update 3: plan [0-9a-f]{12} \(image cache\)$/m,
  );
  expect(byUpdate).toContain("+ package hello-ramroot 1.0-r0");
  expect(byUpdate).toMatch(/^ {2}~ etc\/ramroot\/message {2}size 24 -> 21/m);
  expect(byUpdate).toMatch(/^ {2}\+ usr\/share\/hello-ramroot\/greeting {2}file 0644 0:0/m);
  // with the image cache empty, update 1's image is read from the slot that holds it (a)
  const fromSlot = await ok("source .ramroot/env.sh && npx ramroot image ls --update 1", {
    env: { RAMROOT_IMAGE_CACHE: path.join(work, "empty-cache") },
  });
  expect(fromSlot).toMatch(/^file 0644 0:0 24 [0-9a-f]{12} {2}etc\/ramroot\/message$/m);
  expect(fromSlot).not.toContain("hello-ramroot");
  const noUpdate = await sh("source .ramroot/env.sh && npx ramroot image ls --update 99");
  expect(noUpdate.code).toBe(1);
  expect(noUpdate.out).toContain("no update 99 in stack demo (see `ramroot history`)");

  // "image ls [IMAGE] [--layers]" and "image extract IMAGE DIR [PATH...]" on the same slots
  const layers = await ok("source .ramroot/env.sh && npx ramroot image ls --slot b --layers");
  expect(layers).toMatch(/^layer 1: gzip at byte 0, \d+ entries, \d+ bytes of cpio\nlayer 2: gzip at byte \d+, /m);
  expect(layers).toMatch(
    /^file 0644 0:0 \d+ [0-9a-f]{12} {2}usr\/share\/hello-ramroot\/greeting {2}\[hello-ramroot\]$/m,
  );
  const extracted = path.join(work, "extracted");
  const extract = await ok(`source .ramroot/env.sh && npx ramroot image extract slot:b ${extracted} etc/ramroot`);
  expect(extract).toMatch(/^slot b \(image .*\) -> .*extracted: \d+ files?, \d+ director(y|ies), \d+ symlinks?$/m);
  expect(fs.readFileSync(path.join(extracted, "etc", "ramroot", "message"), "utf8")).toBe("edited by a newcomer\n");
  expect(fs.existsSync(path.join(extracted, "usr"))).toBe(false);

  // The same two slots on an ssh target (a real sshd on loopback), copied off the demo's disk
  // into the directory the ssh target names, compared by `ramroot image diff --ssh`.
  sshd = await startSshd();
  const bootDir = path.join(work, "ssh-boot");
  // Both slots and the layer store their manifests name (a layered slot holds no initramfs of its own).
  // (An image cached before layer sizes were recorded is a whole-file slot, with no layers/.)
  fs.mkdirSync(bootDir, { recursive: true });
  const demoDisk = `${path.join(clone, ".ramroot", "demo", "disk.img")}@@1048576`;
  const top = execFileSync("mdir", ["-b", "-i", demoDisk, "::/"], { encoding: "utf8" });
  const dirs = ["::/a", "::/b", ...(/^::\/layers\/?$/im.test(top) ? ["::/layers"] : [])];
  execFileSync("mcopy", ["-s", "-n", "-o", "-i", demoDisk, ...dirs, bootDir]);
  // The copy is on a case-sensitive filesystem, as a FAT partition mounted on the machine is
  // not: the layers must come off the FAT under the lower-case names the manifests use (the
  // image target stages each under an 8.3 name so the rename keeps its case).
  const layerDir = path.join(bootDir, "layers");
  for (const name of fs.existsSync(layerDir) ? fs.readdirSync(layerDir) : []) expect(name).toBe(name.toLowerCase());
  const ssh = `--ssh root@127.0.0.1:${bootDir} --port ${sshd.port} --identity ${path.join(sshd.dir, "user_key")} --known-hosts ${sshd.knownHosts}`;
  const sshDiff = await ok(`source .ramroot/env.sh && npx ramroot image diff ${ssh} slot:a slot:b`);
  expect(sshDiff).toMatch(/^--- slot a \(ssh root@127\.0\.0\.1:/m);
  expect(sshDiff).toContain("+ package hello-ramroot 1.0-r0");
  expect(sshDiff).toMatch(/^ {2}\+ usr\/share\/hello-ramroot\/greeting {2}file 0644 0:0/m);
  expect(sshDiff).toMatch(/^ {2}~ etc\/ramroot\/message {2}size 24 -> 21/m);

  // "npx ramroot rollback --stack demo goes back to slot a without rebuilding or copying anything"
  const back = await ok("source .ramroot/env.sh && npx ramroot rollback --stack demo");
  expect(back).toMatch(/rolling back machine to update \d+: image [0-9a-f]{12}, already in slot a: switching only/);
  // status reads which update wrote each slot from the slot itself: the rollback (update 4)
  // switched DEFAULT back to a, which update 1 wrote (it went back to update 2, the newest
  // earlier update that left another image running: the no-change one, still running a)
  const status = await ok("source .ramroot/env.sh && npx ramroot status");
  expect(status).toMatch(/^DEFAULT +a\b/m);
  expect(status).toMatch(
    /^slot a +image [0-9a-f]{12} .* by update 1 +\[DEFAULT since update 4: rollback to update 2\]$/m,
  );
  expect(status).toMatch(/^slot b +image [0-9a-f]{12} .* by update 3$/m);
  // "npx ramroot history ... numbers only updates ... Each line has the image the update left as
  // DEFAULT and the git commit (+dirty when Pulumi recorded uncommitted changes)"
  const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: clone, encoding: "utf8" }).trim().slice(0, 12);
  const history = (await ok("source .ramroot/env.sh && npx ramroot history")).trim().split("\n");
  const numbers = history.map((l) => l.trim().split(/\s+/)[0]);
  expect(numbers.filter((n) => n !== "-")).toEqual(["1", "2", "3", "4"]);
  const row = (n: number) => history[numbers.indexOf(String(n))] ?? "";
  expect(row(1)).toMatch(new RegExp(`update +succeeded +DEFAULT a image [0-9a-f]{12}  git ${head}\\b`));
  expect(row(3)).toMatch(new RegExp(`update +succeeded +DEFAULT b image [0-9a-f]{12}  git ${head}\\+dirty`));
  expect(row(4)).toMatch(/update +succeeded +DEFAULT a image [0-9a-f]{12}/);
  expect(row(4).match(/image ([0-9a-f]{12})/)?.[1]).toBe(row(1).match(/image ([0-9a-f]{12})/)?.[1]);
  const missing = await sh("source .ramroot/env.sh && npx ramroot rollback --to 99");
  expect(missing.code).toBe(1);
  expect(missing.out).toMatch(/^ramroot: --to: no update 99\b/m);

  // Errors name the way out: no passphrase in the shell (status and history read without one;
  // a rollback runs an update, which needs it).
  // The demo's passphrase is the demo stack's file, not the shell's: without the file, none.
  const noPass = await sh(
    "source .ramroot/env.sh && mv .ramroot/passphrases/demo demo.pass && npx ramroot rollback --to 1; code=$?; mv demo.pass .ramroot/passphrases/demo; exit $code",
  );
  expect(noPass.code).toBe(1);
  expect(noPass.out.trim().split("\n").pop()).toBe(
    "ramroot: the stack's secrets need a passphrase and none is set: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the one the stack was made with (the demo stack's is in .ramroot/passphrases/demo, which `npm start` writes)",
  );
  const noStack = await sh("source .ramroot/env.sh && npx ramroot status --stack nas-at-home");
  expect(noStack.out).toContain(
    'ramroot: no stack "nas-at-home" in this project: `npm start` creates the demo stack; for another one, `pulumi stack init nas-at-home`',
  );
  // "--verbose prints the whole error": pulumi's own text and the stack trace, not one line
  const verbose = await sh("source .ramroot/env.sh && npx ramroot --verbose status --stack nas-at-home");
  expect(verbose.code).toBe(1);
  expect(verbose.out).toContain("no stack named 'nas-at-home' found");
  expect(verbose.out).not.toContain("`npm start` creates the demo stack");
  expect(verbose.out.trim().split("\n").length).toBeGreaterThan(1);

  // The design is inside the repository: the README does not send a reader to ../shared/DESIGN.md.
  expect(fs.readFileSync(path.join(clone, "README.md"), "utf8")).not.toMatch(/DESIGN\.md/);
  expect(fs.existsSync(path.join(clone, "docs", "design.md"))).toBe(true);
});
