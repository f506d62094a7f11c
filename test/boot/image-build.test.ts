import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { stringify as toYaml } from "yaml";
import { planImage } from "../../provider/image/plan";
import { buildImage } from "../../provider/image/build";
import { bootQemu } from "../../provider/qemu/boot";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { ramroot } from "../fixtures/debian-repo";
import { readBack, readBackEveryArchive } from "../fixtures/image-readback";

// Builds real images from a real-format signed repository made of Debian binaries, and boots them.
jest.setTimeout(900_000);

let work: string;
let repo: ImageRepo;
// every archive a build here packs is read back through cpio-stream and compared with its staging tree
const archives = readBackEveryArchive();
const sha256 = (text: string) => require("node:crypto").createHash("sha256").update(text).digest("hex");

const HELLO = `#!/bin/sh
# a service from the overlay: its marker carries a value from another overlay file
[ "$1" = start ] || exit 0
echo "RAMROOT-UP msg=$(cat /etc/ramroot/message) user=$(id -u ramroot) uname=$(/bin/uname -s) host=$(hostname)"
`;

/** A project directory: config + root/ overlay, pointing at the test repository. */
function writeProject(dir: string, message: string, compression = "gzip"): string {
  fs.mkdirSync(path.join(dir, "root", "etc", "init.d"), { recursive: true });
  fs.mkdirSync(path.join(dir, "root", "etc", "ramroot"), { recursive: true });
  fs.writeFileSync(path.join(dir, "root", "etc", "init.d", "hello"), HELLO, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, "root", "etc", "ramroot", "message"), `${message}\n`);
  fs.symlinkSync("/etc/ramroot/message", path.join(dir, "root", "etc", "motd-link"));
  const config = {
    repositories: [repo.repository],
    keys: [repo.keysDir],
    packages: ["alpine-baselayout", "busybox", "ramroot-init"],
    kernel: "lts",
    overlay: "root",
    services: { boot: ["hostname"], default: ["hello"] },
    hostname: "testbox",
    compression,
    epoch: 1700000000,
  };
  const file = path.join(dir, "image.yaml");
  fs.writeFileSync(file, toYaml(config));
  return file;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-image-"));
  repo = await buildImageRepo(path.join(work, "repo"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("builds an image that boots with its own kernel: init, a service, the overlay, the script-made user, an applet link", async () => {
  const project = path.join(work, "p1");
  fs.mkdirSync(project);
  const config = writeProject(project, "hello-from-overlay");
  const out = await ramroot("build", config, "--cache", path.join(work, "cache1"));
  const imageId = /imageId\s+([0-9a-f]{64})/.exec(out)?.[1];
  const kernel = /kernel\s+(\S+)/.exec(out)?.[1];
  const initramfs = /initramfs\s+(\S+)/.exec(out)?.[1];
  expect(imageId).toBeDefined();
  expect(fs.existsSync(kernel!)).toBe(true);
  // built by the CLI: read back through cpio-stream, the layers folded as the kernel unpacks them
  const tree = await readBack(initramfs!);
  expect(tree.get("etc/ramroot/message")?.sha256).toBe(sha256("hello-from-overlay\n"));
  expect(tree.get("etc/hostname")?.sha256).toBe(sha256("testbox\n"));
  expect(tree.get("bin/busybox")).toEqual(expect.objectContaining({ type: "file", mode: 0o755 }));
  const result = await bootQemu({
    media: { kind: "kernel", kernel: kernel!, initrd: initramfs!, append: "rdinit=/sbin/init" },
    marker: "RAMROOT-UP msg=hello-from-overlay user=100 uname=Linux host=testbox",
    timeoutMs: 180_000,
  });
  if (!result.found) console.log(result.log.slice(-3000));
  expect(result.found).toBe(true);
  // A second build of the same config comes from the cache.
  const again = await ramroot("build", config, "--cache", path.join(work, "cache1"));
  expect(again).toContain(imageId!);
  expect(again).toContain("from the cache");
});

test("layered: same config in another directory, later, gives the same bytes; an overlay edit rebuilds only the overlay layer, equals a cold build of the edit, and boots showing it", async () => {
  const a = path.join(work, "pa");
  const b = path.join(work, "pb");
  const c = path.join(work, "pc");
  for (const d of [a, b, c]) fs.mkdirSync(d);
  const ca = writeProject(a, "same");
  const cb = writeProject(b, "same");
  const plan = (config: string, dir: string) =>
    planImage(require("yaml").parse(fs.readFileSync(config, "utf8")), { baseDir: dir });
  const pa = await plan(ca, a);
  const ia = await buildImage(pa, { cacheDir: path.join(work, "cache-a"), onPacked: archives.onPacked });
  expect(ia.layers).toHaveLength(2);
  await new Promise((r) => setTimeout(r, 1100)); // a different second for every host timestamp
  fs.utimesSync(path.join(b, "root", "etc", "ramroot", "message"), new Date(), new Date());
  const pb = await plan(cb, b);
  const ib = await buildImage(pb, { cacheDir: path.join(work, "cache-b"), onPacked: archives.onPacked });
  expect(ib.built).toBe(true);
  expect(pb.plan.planId).toBe(pa.plan.planId);
  expect(ib.kernel!.sha256).toBe(ia.kernel!.sha256);
  expect(ib.initramfs.sha256).toBe(ia.initramfs.sha256);
  expect(ib.sbom.sha256).toBe(ia.sbom.sha256);
  expect(ib.imageId).toBe(ia.imageId);

  // One overlay file edited: the package layer comes from the layer cache, nothing is installed.
  fs.writeFileSync(path.join(b, "root", "etc", "ramroot", "message"), "changed\n");
  const pe = await plan(cb, b);
  const log: string[] = [];
  const ie = await buildImage(pe, {
    cacheDir: path.join(work, "cache-b"),
    onProgress: (m) => log.push(m),
    onPacked: archives.onPacked,
  });
  expect(pe.plan.planId).not.toBe(pa.plan.planId);
  expect(ie.imageId).not.toBe(ia.imageId);
  expect(pe.plan.packages).toEqual(pa.plan.packages);
  expect(pe.plan.options).toEqual(pa.plan.options);
  const changed = Object.keys(pe.plan.overlay).filter((p) => pe.plan.overlay[p] !== pa.plan.overlay[p]);
  expect(changed).toEqual(["etc/ramroot/message"]);
  expect(ie.kernel!.sha256).toBe(ia.kernel!.sha256);
  expect(log.some((m) => /^package layer [0-9a-f]{12} is in the cache$/.test(m))).toBe(true);
  expect(log.some((m) => m.startsWith("installing"))).toBe(false);
  expect(ie.layers[0]).toEqual(ia.layers[0]);
  expect(ie.layers[1]!.sha256).not.toBe(ia.layers[1]!.sha256);

  // The same edit built cold elsewhere, with no layer cache: the same bytes.
  const cc = writeProject(c, "changed");
  const ic = await buildImage(await plan(cc, c), { cacheDir: path.join(work, "cache-c"), onPacked: archives.onPacked });
  expect(ic.initramfs.sha256).toBe(ie.initramfs.sha256);
  expect(ic.imageId).toBe(ie.imageId);
  // the concatenated image, read back whole: the edit in the overlay layer wins over nothing else
  const tree = await readBack(ie.initramfs.path);
  expect(tree.get("etc/ramroot/message")).toEqual(
    expect.objectContaining({ type: "file", mode: 0o644, uid: 0, gid: 0, sha256: sha256("changed\n") }),
  );
  expect(tree.get("etc/motd-link")).toEqual(
    expect.objectContaining({ type: "symlink", linkTarget: "/etc/ramroot/message" }),
  );
  expect(archives.checked).toBeGreaterThanOrEqual(5); // a: 2, b: 2, e: overlay only, c: 2

  const result = await bootQemu({
    media: { kind: "kernel", kernel: ie.kernel!.path, initrd: ie.initramfs.path, append: "rdinit=/sbin/init" },
    marker: "RAMROOT-UP msg=changed user=100 uname=Linux host=testbox",
    timeoutMs: 180_000,
  });
  if (!result.found) console.log(result.log.slice(-3000));
  expect(result.found).toBe(true);
});

test("two git clones of one project, made with different umasks in different directories, give the same image", async () => {
  const origin = path.join(work, "origin");
  fs.mkdirSync(origin);
  writeProject(origin, "cloned");
  const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, stdio: "pipe" });
  git(origin, "init", "-q");
  git(origin, "add", ".");
  git(origin, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "project");
  const clone = (name: string, umask: string) => {
    const dir = path.join(work, name);
    execFileSync("sh", ["-c", `umask ${umask} && git clone -q "$1" "$2"`, "sh", origin, dir]);
    return dir;
  };
  const a = clone("clone-022", "022");
  const b = clone(path.join("nested", "clone-002"), "002");
  expect(fs.statSync(path.join(b, "root", "etc", "ramroot", "message")).mode & 0o777).toBe(0o664);
  const build = async (dir: string, cache: string) =>
    buildImage(
      await planImage(require("yaml").parse(fs.readFileSync(path.join(dir, "image.yaml"), "utf8")), { baseDir: dir }),
      { cacheDir: path.join(work, cache), onPacked: archives.onPacked },
    );
  const ia = await build(a, "cache-clone-a");
  const ib = await build(b, "cache-clone-b");
  expect(ib.planId).toBe(ia.planId);
  expect(ib.initramfs.sha256).toBe(ia.initramfs.sha256);
  expect(ib.imageId).toBe(ia.imageId);
});

test("an overlay file where the packages have a directory cannot be layered: one folded archive, the same bytes from another directory, which boots without that directory", async () => {
  const folded = (name: string) => {
    const project = path.join(work, name);
    fs.mkdirSync(project, { recursive: true });
    const config = writeProject(project, "folded");
    // lib/modules holds the kernel's module tree: a later archive could not replace it
    fs.mkdirSync(path.join(project, "root", "lib"), { recursive: true });
    fs.writeFileSync(path.join(project, "root", "lib", "modules"), "no-modules\n");
    fs.writeFileSync(
      path.join(project, "root", "etc", "init.d", "hello"),
      HELLO.replace("msg=$(cat /etc/ramroot/message)", "msg=$(cat /etc/ramroot/message)-$(cat /lib/modules)"),
      { mode: 0o755 },
    );
    return { project, config };
  };
  const build = async ({ project, config }: { project: string; config: string }, cache: string, log?: string[]) =>
    buildImage(await planImage(require("yaml").parse(fs.readFileSync(config, "utf8")), { baseDir: project }), {
      cacheDir: path.join(work, cache),
      ...(log ? { onProgress: (m: string) => log.push(m) } : {}),
      onPacked: archives.onPacked,
    });
  const log: string[] = [];
  const image = await build(folded("pf"), "cache-f", log);
  expect(image.layers).toHaveLength(1);
  expect(log.some((m) => m.includes("lib/modules: replaces a directory of the packages"))).toBe(true);
  // Not layered, and still deterministic: the same project elsewhere, with its own caches.
  const again = await build(folded(path.join("elsewhere", "pf")), "cache-f2");
  expect(again.layers).toHaveLength(1);
  expect(again.initramfs.sha256).toBe(image.initramfs.sha256);
  expect(again.imageId).toBe(image.imageId);
  const result = await bootQemu({
    media: { kind: "kernel", kernel: image.kernel!.path, initrd: image.initramfs.path, append: "rdinit=/sbin/init" },
    marker: "RAMROOT-UP msg=folded-no-modules",
    timeoutMs: 180_000,
  });
  if (!result.found) console.log(result.log.slice(-3000));
  expect(result.found).toBe(true);
});

test("--plan-only prints the plan; an unreachable repository fails fast naming the URL; a missing package names it and the repositories", async () => {
  const project = path.join(work, "p2");
  fs.mkdirSync(project);
  const config = writeProject(project, "plan");
  const plan = JSON.parse(await ramroot("build", "--plan-only", config));
  expect(plan.planId).toMatch(/^[0-9a-f]{64}$/);
  expect(plan.packages).toEqual(
    expect.objectContaining({ busybox: "1.35.0-r0", "linux-lts": "6.1.0-r0", "alpine-baselayout": "3.6.8-r1" }),
  );
  expect(plan.overlay["etc/init.d/hello"]).toMatch(/^file 755 [0-9a-f]{64}$/);

  const unreachable = path.join(project, "unreachable.yaml");
  fs.writeFileSync(
    unreachable,
    toYaml({
      repositories: ["http://127.0.0.1:9/alpine/main"],
      keys: [repo.keysDir],
      packages: ["busybox"],
      kernel: "none",
    }),
  );
  await expect(ramroot("build", "--plan-only", unreachable)).rejects.toThrow(/http:\/\/127\.0\.0\.1:9\/alpine\/main/);

  const missing = path.join(project, "missing.yaml");
  fs.writeFileSync(
    missing,
    toYaml({ repositories: [repo.repository], keys: [repo.keysDir], packages: ["busybox", "zfs-lts"], kernel: "none" }),
  );
  const err = await ramroot("build", "--plan-only", missing).catch((e: Error) => e.message);
  expect(err).toMatch(/zfs-lts/);
  expect(err).toContain(repo.repository);
});

test("a zstd image (multi-threaded, still reproducible) boots too", async () => {
  const project = path.join(work, "pz");
  fs.mkdirSync(project);
  const config = writeProject(project, "zstd-image", "zstd");
  const resolved = await planImage(require("yaml").parse(fs.readFileSync(config, "utf8")), { baseDir: project });
  const a = await buildImage(resolved, { cacheDir: path.join(work, "cache-z1"), onPacked: archives.onPacked });
  const b = await buildImage(resolved, { cacheDir: path.join(work, "cache-z2"), onPacked: archives.onPacked });
  expect(a.initramfs.path.endsWith(".zst")).toBe(true);
  expect(b.initramfs.sha256).toBe(a.initramfs.sha256);
  const result = await bootQemu({
    media: { kind: "kernel", kernel: a.kernel!.path, initrd: a.initramfs.path, append: "rdinit=/sbin/init" },
    marker: "RAMROOT-UP msg=zstd-image",
    timeoutMs: 180_000,
  });
  expect(result.found).toBe(true);
});
