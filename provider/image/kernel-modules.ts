/**
 * Kernel modules must load on the machine: modprobe needs modules.dep (and modules.alias for
 * drivers loaded by device). A kernel package may ship without them, and module packages
 * (zfs-lts, say) add modules that the kernel package's modules.dep does not list; then the
 * index is made at build time with kmod's `depmod -b <root> <release>`, as the machine itself
 * would. depmod orders what modules.order does not list by directory order, which differs
 * between filesystems, so while it runs modules.order is completed with the missing modules
 * sorted by path (and put back afterwards): the index is the same bytes on every build host.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import type { FileManifest } from "../apk/expand";
import { HostError, TrustError } from "../ramroot-error";

const MODULE_FILE = /\.ko(\.(gz|xz|zst))?$/;

function modulesUnder(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
    const child = rel === "" ? name : `${rel}/${name}`;
    const st = fs.lstatSync(path.join(dir, child));
    if (st.isDirectory()) out.push(...modulesUnder(dir, child));
    else if (st.isFile() && MODULE_FILE.test(name)) out.push(child);
  }
  return out;
}

/** Module paths modules.dep lists (relative to the release directory), or undefined when it is missing. */
function indexedModules(releaseDir: string): Set<string> | undefined {
  const dep = path.join(releaseDir, "modules.dep");
  if (!fs.lstatSync(dep, { throwIfNoEntry: false })?.isFile()) return undefined;
  const listed = new Set<string>();
  for (const line of fs.readFileSync(dep, "utf8").split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) listed.add(line.slice(0, colon));
  }
  return listed;
}

export interface ModuleIndexResult {
  /** kernel releases whose index was (re)made */
  indexed: string[];
  /** the index files written, relative to the root (owned by root in the image) */
  files: string[];
}

/**
 * Makes modules.dep and friends under <root>/lib/modules/<release> wherever they are missing or
 * incomplete. Files it writes that `manifest` (the installed tree's ownership) lacks are added
 * to it as root's, mode 0644, installed by "(depmod at build)" rather than by a package.
 */
export function ensureModuleIndex(root: string, manifest?: FileManifest): ModuleIndexResult {
  const base = path.join(root, "lib", "modules");
  const indexed: string[] = [];
  const files: string[] = [];
  // Only real directories: depmod -b writes under <root>/lib/modules/<release> as the host sees
  // it, so a symlink there (a package's lib/modules -> /somewhere) is not entered.
  const realDir = (p: string) => fs.lstatSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
  if (!realDir(path.join(root, "lib")) || !realDir(base)) return { indexed, files };
  for (const release of fs.readdirSync(base).sort()) {
    const releaseDir = path.join(base, release);
    if (!realDir(releaseDir)) continue;
    const modules = modulesUnder(releaseDir);
    if (modules.length === 0) continue;
    const listed = indexedModules(releaseDir);
    if (listed && modules.every((m) => listed.has(m))) continue;
    for (const name of fs.readdirSync(releaseDir).filter((n) => n.startsWith("modules.")))
      if (!fs.lstatSync(path.join(releaseDir, name)).isFile())
        throw new TrustError(
          `kernel modules of ${release}: lib/modules/${release}/${name} is not a regular file, and depmod would write through it; a package must ship its module index as files, or none`,
          undefined,
          "repositories",
        );
    runDepmod(root, release, releaseDir, modules);
    indexed.push(release);
    for (const f of fs.readdirSync(releaseDir).sort())
      if (f.startsWith("modules.")) files.push(`lib/modules/${release}/${f}`);
  }
  for (const f of files) {
    if (manifest && !manifest.has(f))
      manifest.set(f, {
        path: f,
        type: "file",
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: fs.statSync(path.join(root, f)).size,
        package: "(depmod at build)",
      });
  }
  return { indexed, files };
}

function runDepmod(root: string, release: string, releaseDir: string, modules: string[]): void {
  const orderFile = path.join(releaseDir, "modules.order");
  const original = fs.existsSync(orderFile) ? fs.readFileSync(orderFile) : undefined;
  const ordered = new Set((original?.toString("utf8") ?? "").split("\n").filter((l) => l !== ""));
  const strip = (m: string) => m.replace(/\.(gz|xz|zst)$/, "");
  const missing = modules.filter((m) => !ordered.has(strip(m))).map(strip);
  try {
    if (missing.length > 0) fs.writeFileSync(orderFile, [...ordered, ...missing].map((l) => `${l}\n`).join(""));
    execFileSync("depmod", ["-b", root, release], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    const why = e.code === "ENOENT" ? "depmod is missing (install kmod)" : (e.stderr?.toString().trim() ?? e.message);
    throw new HostError(`kernel modules of ${release}: making modules.dep failed: ${why}`);
  } finally {
    if (missing.length > 0) {
      if (original) fs.writeFileSync(orderFile, original);
      else fs.rmSync(orderFile, { force: true });
    }
  }
  if (!fs.existsSync(path.join(releaseDir, "modules.dep")))
    throw new HostError(`kernel modules of ${release}: depmod wrote no modules.dep`);
}
