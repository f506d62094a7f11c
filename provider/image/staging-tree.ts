/**
 * The installed tree a layer is packed from: the lock installed into a staging directory
 * (scripts honoured), and, for an image whose overlay cannot be layered (overlay-layer.ts), the
 * overlay, hostname and services laid on it as a single-layer build does (tree-entries.ts turns
 * the tree into cpio entries).
 */
import { installPackages } from "../apk/install";
import { packageLocator } from "../apk/repository";
import type { FileManifest } from "../apk/expand";
import { servicesOf } from "./image-config";
import { enableServices } from "./services";
import { ensureModuleIndex } from "./kernel-modules";
import type { ResolvedPlan } from "./plan";
import { writeOverlay } from "./overlay";
import { StagingRoot } from "../apk/staging-root";
import { counter } from "../progress";
import { RamrootError } from "../ramroot-error";

/** Installs the plan's lock into `staging`; resolves to the ownership manifest and the script warnings. */
export async function installTree(
  resolved: ResolvedPlan,
  staging: string,
  progress: (m: string) => void,
): Promise<{ manifest: FileManifest; warnings: string[] }> {
  const { config } = resolved;
  const total = resolved.lock.packages.length;
  progress(`installing ${total} packages`);
  // The installer says "fetch NAME-VERSION" and "unpack NAME-VERSION" (or "install ..." for a
  // package without files) once per package: counted here, at most a line a second each.
  const names = new Set(resolved.lock.packages.map((p) => `${p.name}-${p.version}`));
  const fetched = counter(progress, "packages fetched", total, { intervalMs: 1000 });
  const unpacked = counter(progress, "packages installed", total, { intervalMs: 1000 });
  const onProgress = (m: string) => {
    const [verb, what = ""] = m.split(" ", 2);
    if (verb === "fetch" && names.has(what)) fetched.add(1, what);
    else if ((verb === "unpack" || verb === "install") && names.has(what)) unpacked.add(1, what);
    else progress(m);
  };
  const installed = await installPackages({
    root: staging,
    lock: resolved.lock,
    arch: config.arch,
    keys: resolved.keys,
    allowUntrusted: config.allowUntrusted,
    repositories: config.repositories,
    locate: packageLocator(resolved.repositories),
    onProgress,
    sandboxOwners: true,
  });
  const warnings: string[] = [];
  for (const s of installed.skippedScripts)
    warnings.push(`${s.package} ${s.script} not run: ${s.detail ?? "architecture differs"}`);
  for (const s of installed.failedScripts) warnings.push(`${s.package} ${s.script} failed: ${s.detail ?? ""}`);
  for (const r of installed.refusedFiles)
    warnings.push(
      `${r.package}: ${r.path} not installed, ${r.owner} owns it and ${r.package} does not replace it (flagged f:f in the db, as apk does)`,
    );
  // A foreign architecture's scripts are refused, not left out quietly: without them (busybox's
  // applet links, the users a pre-install adds) the image is not what the packages expect.
  if (installed.skippedScripts.length > 0 && !config.allowScriptFailures) {
    const scripts = installed.skippedScripts.map((s) => `${s.package} ${s.script}`).join(", ");
    throw new RamrootError(
      "input",
      `install scripts cannot run: ${scripts}. ${installed.skippedScripts[0]!.detail ?? ""}. Build on a ${config.arch} machine, or where the kernel runs ${config.arch} programs through QEMU's user-mode emulator, or use packages without install scripts (ship what they would make), or set allowScriptFailures: true to build the image without them`,
    );
  }
  if (installed.failedScripts.length > 0 && !config.allowScriptFailures) {
    const failed = installed.failedScripts.map((s) => s.detail ?? `${s.package} ${s.script}`).join("; ");
    throw new RamrootError(
      "input",
      `install scripts failed, so the image is not what the packages expect: ${failed}. Fix the package, or set allowScriptFailures: true to build it anyway (apk flags the package and goes on)`,
    );
  }
  for (const w of warnings) progress(`WARNING: ${w}`);
  ensureModuleIndex(staging, installed.manifest);
  return { manifest: installed.manifest, warnings };
}

/**
 * Lays the overlay, the hostname and the service links on an installed tree (the folded,
 * single-layer build); resolves to the paths they own (root-owned in the archive).
 */
export function layOverlay(staging: string, resolved: ResolvedPlan, progress: (m: string) => void): Set<string> {
  const { config } = resolved;
  writeOverlay(staging, resolved.overlayEntries);
  const overlayPaths = new Set(resolved.overlayEntries.map((e) => e.path));
  if (config.hostname) {
    new StagingRoot(staging).writeFile("etc/hostname", `${config.hostname}\n`);
    overlayPaths.add("etc/hostname");
  }
  const links = enableServices(staging, servicesOf(config));
  if (links.skipped.length > 0) progress(`default services not installed, skipped: ${links.skipped.join(" ")}`);
  for (const level of Object.keys(links.enabled)) overlayPaths.add(`etc/runlevels/${level}`);
  return overlayPaths;
}
