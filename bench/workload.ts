/**
 * The benchmark workload: a NAS-sized image. It reuses the test fixtures' repository
 * (Debian's busybox-static with its applet links, the base layout, an init package, signed
 * with a generated key; test/fixtures/image-repo.ts) and adds to it, with `ramroot pkg build`
 * and `ramroot repo index`:
 * - linux-lts 6.1.0-r1: the Debian kernel with its FULL module tree (about 400 MB unpacked);
 *   the solver picks it over the fixture's 6.1.0-r0, which carries two module directories;
 * - bench-data 1.0-r0: a few hundred small files (documentation-like text and small configs).
 * A project directory holds three configs that differ only in compression, and a root/
 * overlay with a service that prints a marker naming the number of modules it sees.
 * Everything is made once and cached under the fixture cache; nothing here is timed.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { stringify as toYaml } from "yaml";
import { fixtureCacheDir } from "../test/fixtures/cache";
import { BUILDER_FORMAT } from "../provider/image/plan";
import { debianKernel } from "../test/fixtures/debian-kernel";
import { ramroot } from "../test/fixtures/debian-repo";
import { buildImageRepo, type ImageRepo } from "../test/fixtures/image-repo";
import { ramrootCli } from "./ramroot-cli";

/** Bump when the workload changes, so a cached one is not reused. */
const WORKLOAD_VERSION = 1;

export const COMPRESSIONS = ["none", "gzip", "zstd"] as const;
export type BenchCompression = (typeof COMPRESSIONS)[number];

export interface BuiltImage {
  kernel: string;
  initramfs: string;
  initramfsBytes: number;
  imageId: string;
}

export interface Workload {
  dir: string;
  repo: ImageRepo;
  /** the project: image-<compression>.yaml + root/ */
  projectDir: string;
  config: Record<BenchCompression, string>;
  /** the overlay file the warm-rebuild benchmark changes */
  changingFile: string;
  /** the packages the configs ask for (the kernel comes with kernel: lts) */
  packages: string[];
  /** the marker the overlay's service prints when the image is up */
  marker: string;
  /** the images, built once from the configs; a build that failed is absent from here and named in buildErrors */
  images: { gzip: BuiltImage; none: BuiltImage; zstd?: BuiltImage };
  buildErrors: Partial<Record<BenchCompression, string>>;
  /** the unpacked image (GNU cpio -idm of the uncompressed archive): the tree the packers read */
  tree: string;
  treeBytes: number;
  treeFiles: number;
}

const log = (m: string) => process.stderr.write(`[bench workload] ${m}\n`);

/** Deterministic filler text, so the small files compress like text, not like noise. */
function fillerText(seed: number, bytes: number): string {
  const words = [
    "storage",
    "pool",
    "replica",
    "snapshot",
    "export",
    "network",
    "service",
    "daemon",
    "config",
    "volume",
    "disk",
    "share",
    "user",
    "group",
    "mount",
    "scrub",
  ];
  let out = "";
  let x = seed;
  while (out.length < bytes) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out += words[x % words.length] + (x % 11 === 0 ? ".\n" : " ");
  }
  return out.slice(0, bytes) + "\n";
}

function writeBenchData(tree: string): number {
  let files = 0;
  for (let i = 0; i < 240; i++) {
    const file = path.join(
      tree,
      "usr",
      "share",
      "doc",
      "bench-data",
      `section-${String(i % 12).padStart(2, "0")}`,
      `page-${String(i).padStart(3, "0")}.txt`,
    );
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, fillerText(i + 1, 200 + ((i * 977) % 8000)));
    files++;
  }
  for (let i = 0; i < 60; i++) {
    const file = path.join(tree, "etc", "bench-data", `conf.d-${String(i).padStart(2, "0")}.conf`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(
      file,
      `# setting file ${i}\nname=share${i}\npath=/srv/share${i}\nreadonly=${i % 2 === 0 ? "no" : "yes"}\n`,
    );
    files++;
  }
  return files;
}

function countKernelModules(dir: string): number {
  let n = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile() && /\.ko(\.(xz|zst|gz))?$/.test(entry.name)) n++;
  return n;
}

function treeSize(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    bytes += fs.statSync(path.join(entry.parentPath, entry.name)).size;
    files++;
  }
  return { bytes, files };
}

const MARKER_SERVICE = `#!/bin/sh
# The benchmark's boot marker: printed once init has started the default runlevel.
[ "$1" = start ] || exit 0
echo "RAMROOT-BENCH-UP modules=$(find /lib/modules -name '*.ko' | wc -l)"
`;

async function buildRepository(dir: string): Promise<{ repo: ImageRepo; modules: number }> {
  const repo = await buildImageRepo(dir);
  const keys = path.join(dir, "keys");
  const privateKey = fs.readdirSync(keys).find((f) => f.endsWith(".rsa"));
  if (!privateKey) throw new Error(`no private key in ${keys}`);
  const sign = ["--sign-key", path.join(keys, privateKey), "--key-name", `${privateKey}.pub`];
  const common = ["--arch", repo.arch, "--output", repo.archDir, "--build-time", "1700000000", ...sign];

  const kernel = debianKernel();
  const ktree = path.join(dir, "trees", "linux-lts-full");
  fs.rmSync(ktree, { recursive: true, force: true });
  fs.mkdirSync(path.join(ktree, "boot"), { recursive: true });
  fs.mkdirSync(path.join(ktree, "lib", "modules"), { recursive: true });
  fs.copyFileSync(kernel.vmlinuz, path.join(ktree, "boot", "vmlinuz-lts"));
  log(`copying the full module tree of ${kernel.release}`);
  fs.cpSync(kernel.modulesDir, path.join(ktree, "lib", "modules", kernel.release), { recursive: true });
  const modules = countKernelModules(path.join(ktree, "lib", "modules"));
  log(`ramroot pkg build linux-lts 6.1.0-r1 (${modules} modules)`);
  await ramroot(
    "pkg",
    "build",
    "--dir",
    ktree,
    "--name",
    "linux-lts",
    "--version",
    "6.1.0-r1",
    "--description",
    `Debian kernel ${kernel.release}, all modules`,
    "--license",
    "GPL-2.0-only",
    "--origin",
    "linux-lts",
    ...common,
  );
  fs.rmSync(ktree, { recursive: true, force: true }); // 400 MB the benchmarks never read again

  const dtree = path.join(dir, "trees", "bench-data");
  fs.rmSync(dtree, { recursive: true, force: true });
  const files = writeBenchData(dtree);
  log(`ramroot pkg build bench-data (${files} small files)`);
  await ramroot(
    "pkg",
    "build",
    "--dir",
    dtree,
    "--name",
    "bench-data",
    "--version",
    "1.0-r0",
    "--description",
    "small files like a real system has",
    "--license",
    "MIT",
    ...common,
  );
  await ramroot("repo", "index", "--dir", repo.archDir, "--description", "ramroot benchmark repository", ...sign);
  return { repo, modules };
}

function writeProject(
  dir: string,
  repo: ImageRepo,
): { config: Record<BenchCompression, string>; changingFile: string; packages: string[] } {
  fs.mkdirSync(path.join(dir, "root", "etc", "init.d"), { recursive: true });
  fs.mkdirSync(path.join(dir, "root", "etc", "bench"), { recursive: true });
  fs.writeFileSync(path.join(dir, "root", "etc", "init.d", "bench-marker"), MARKER_SERVICE, { mode: 0o755 });
  const changingFile = path.join(dir, "root", "etc", "bench", "revision");
  fs.writeFileSync(changingFile, "0\n");
  for (let i = 0; i < 40; i++)
    fs.writeFileSync(path.join(dir, "root", "etc", "bench", `share-${i}.conf`), fillerText(1000 + i, 300));
  const packages = ["alpine-baselayout", "busybox", "ramroot-init", "bench-data"];
  const config = {} as Record<BenchCompression, string>;
  for (const compression of COMPRESSIONS) {
    const file = path.join(dir, `image-${compression}.yaml`);
    fs.writeFileSync(
      file,
      toYaml({
        repositories: [repo.repository],
        keys: [repo.keysDir],
        packages,
        kernel: "lts",
        overlay: "root",
        services: { boot: ["hostname"], default: ["bench-marker"] },
        hostname: "benchbox",
        compression,
        epoch: 1700000000,
      }),
    );
    config[compression] = file;
  }
  return { config, changingFile, packages };
}

/** Builds one config with the CLI into the workload's own caches. */
async function buildWith(config: string, dir: string): Promise<BuiltImage> {
  const out = await ramrootCli(["build", config, "--cache", path.join(dir, "images")], {
    RAMROOT_CACHE: path.join(dir, "cache"),
  });
  const field = (name: string) => {
    const m = new RegExp(`^${name}\\s+(\\S+)(?:\\s+(\\S+))?`, "m").exec(out.stdout);
    if (!m) throw new Error(`ramroot build ${config} printed no ${name} line:\n${out.stdout}`);
    return m;
  };
  const initramfs = field("initramfs")[1]!;
  return {
    kernel: field("kernel")[1]!,
    initramfs,
    initramfsBytes: fs.statSync(initramfs).size,
    imageId: field("imageId")[1]!,
  };
}

export async function benchWorkload(): Promise<Workload> {
  const kernel = debianKernel();
  const dir = path.join(fixtureCacheDir(), `bench-workload-v${WORKLOAD_VERSION}-${kernel.release}`);
  const done = path.join(dir, "workload.json");
  if (fs.existsSync(done)) {
    const w = JSON.parse(fs.readFileSync(done, "utf8")) as Workload & { builderFormat?: number };
    // Images from another builder format, or a failed build, are made again (the repository stays).
    const current = w.builderFormat === BUILDER_FORMAT && Object.keys(w.buildErrors).length === 0;
    if (
      current &&
      Object.values(w.images).every((i) => i === undefined || fs.existsSync(i.initramfs)) &&
      fs.existsSync(w.tree)
    )
      return w;
  }
  // The repository (the slow part: a 400 MB package) is kept once made; the rest is redone.
  const repoDone = path.join(dir, "repo.json");
  let made: { repo: ImageRepo; modules: number };
  if (fs.existsSync(repoDone)) {
    made = JSON.parse(fs.readFileSync(repoDone, "utf8")) as { repo: ImageRepo; modules: number };
    for (const p of ["project", "images", "cache", "tree"])
      fs.rmSync(path.join(dir, p), { recursive: true, force: true });
  } else {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    log(`making the workload in ${dir} (once; several minutes)`);
    made = await buildRepository(path.join(dir, "repo"));
    fs.writeFileSync(repoDone, JSON.stringify(made, null, 2) + "\n");
  }
  const { repo, modules } = made;
  const projectDir = path.join(dir, "project");
  const { config, changingFile, packages } = writeProject(projectDir, repo);
  const built: Partial<Record<BenchCompression, BuiltImage>> = {};
  const buildErrors: Partial<Record<BenchCompression, string>> = {};
  for (const c of COMPRESSIONS) {
    log(`ramroot build ${path.basename(config[c])}`);
    try {
      built[c] = await buildWith(config[c], dir);
    } catch (err) {
      // A failing build is a finding the results must report, not a reason to measure nothing.
      if (c !== "zstd") throw err;
      buildErrors[c] = (err as Error).message;
      log(`ramroot build ${path.basename(config[c])} FAILED: ${buildErrors[c]!.split("\n").slice(-12).join("\n")}`);
    }
  }
  const images = { gzip: built.gzip!, none: built.none!, zstd: built.zstd };
  const tree = path.join(dir, "tree");
  fs.mkdirSync(tree);
  log("unpacking the uncompressed image with GNU cpio");
  execFileSync("cpio", ["-idm", "--quiet", "--no-absolute-filenames", "-F", images.none.initramfs], {
    cwd: tree,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const size = treeSize(tree);
  const workload: Workload = {
    dir,
    repo,
    projectDir,
    config,
    changingFile,
    packages,
    marker: `RAMROOT-BENCH-UP modules=${modules}`,
    images,
    buildErrors,
    tree,
    treeBytes: size.bytes,
    treeFiles: size.files,
  };
  fs.writeFileSync(done, JSON.stringify({ ...workload, builderFormat: BUILDER_FORMAT }, null, 2) + "\n");
  return workload;
}

/** sha256 of a file, to check that two runs of a deterministic packer agree. */
export function sha256File(file: string): string {
  const hash = crypto.createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}
