import { advOfLdlinux, bootOnceOf } from "./adv";
import type { BootTarget } from "./boot-target";
import {
  entryByLabel,
  findLdlinuxDir,
  readSyslinuxConfig,
  writeSyslinuxConfig,
  type SyslinuxConfigSpec,
} from "./syslinux-config";

/**
 * One-time trial boots. "Boot X once" lives in syslinux's ADV at the end of ldlinux.sys;
 * ldlinux clears it on disk before it loads the kernel, so whatever happens next (a panic with
 * panic=N, a watchdog, a power cut) the following boot is DEFAULT again. Promote makes the
 * trial permanent by pointing DEFAULT at it.
 */

/** The directory holding ldlinux.sys ("" for the partition's root); an error when syslinux is not installed. */
async function ldlinuxDir(target: BootTarget): Promise<string> {
  const dir = await findLdlinuxDir(target);
  if (dir === undefined)
    throw new Error(`${target.describe()}: no ldlinux.sys found; syslinux is not installed on this boot partition`);
  return dir;
}

/** The label set to boot once, or undefined when the ADV holds none. */
export async function readBootOnce(target: BootTarget): Promise<string | undefined> {
  const dir = await ldlinuxDir(target);
  return readBootOnceIn(target, dir);
}

/** The once-boot in the ADV of `dir`'s ldlinux.sys (dir "" is the partition's root). */
async function readBootOnceIn(target: BootTarget, dir: string): Promise<string | undefined> {
  const bytes = await target.readFile(dir === "" ? "ldlinux.sys" : `${dir}/ldlinux.sys`);
  if (bytes === undefined) return undefined;
  return bootOnceOf(advOfLdlinux(bytes).entries);
}

/**
 * Boots `label` on the next boot only. The label must be an entry of the current config. The
 * target writes the ADV its way (`extlinux --once` where mounted, in place on an image); the
 * result is read back.
 */
export async function setBootOnce(target: BootTarget, label: string): Promise<void> {
  const config = await readSyslinuxConfig(target);
  if (!config) throw new Error(`${target.describe()}: no syslinux config; write one before setting a one-time boot`);
  const entry = entryByLabel(config.spec, label);
  if (!entry) {
    throw new Error(
      `label: got ${JSON.stringify(label)}; expected one of the labels in ${config.path}: ${config.spec.entries.map((e) => e.label).join(", ")}`,
    );
  }
  const dir = await ldlinuxDir(target);
  await target.writeBootOnce(entry.label, dir);
  const now = await readBootOnce(target);
  if (now !== entry.label)
    throw new Error(
      `${target.describe()}: boot-once reads back as ${JSON.stringify(now)} after setting ${JSON.stringify(entry.label)}`,
    );
}

/**
 * Clears a pending one-time boot whose label `spec` (the config about to be written) lacks, and
 * returns that label. Such a once-boot is left by a trial that was interrupted after it set
 * one; syslinux would fail to load it at the next boot and stop at its `boot:` prompt, which
 * it leaves only after TIMEOUT (never with TIMEOUT 0), so the machine would not come back.
 */
export async function clearStaleBootOnce(target: BootTarget, spec: SyslinuxConfigSpec): Promise<string | undefined> {
  const dir = await findLdlinuxDir(target);
  if (dir === undefined) return undefined;
  const pending = await readBootOnceIn(target, dir);
  if (pending === undefined || entryByLabel(spec, pending)) return undefined;
  await clearBootOnceIn(target, dir);
  return pending;
}

/** Removes a pending one-time boot (fine when none is set). */
export async function clearBootOnce(target: BootTarget): Promise<void> {
  const dir = await ldlinuxDir(target);
  if ((await readBootOnceIn(target, dir)) === undefined) return;
  await clearBootOnceIn(target, dir);
}

/** Clears the ADV's once-boot in `dir`'s ldlinux.sys and reads it back. */
async function clearBootOnceIn(target: BootTarget, dir: string): Promise<void> {
  await target.writeBootOnce(undefined, dir);
  const now = await readBootOnceIn(target, dir);
  if (now !== undefined)
    throw new Error(`${target.describe()}: boot-once still reads ${JSON.stringify(now)} after clearing it`);
}

/** Makes `label` the DEFAULT (after a good trial boot). Resolves to the config written. */
export async function promote(target: BootTarget, label: string): Promise<{ path: string; sha256: string }> {
  const config = await readSyslinuxConfig(target);
  if (!config) throw new Error(`${target.describe()}: no syslinux config to promote ${JSON.stringify(label)} in`);
  const entry = entryByLabel(config.spec, label);
  if (!entry)
    throw new Error(
      `label: got ${JSON.stringify(label)}; expected one of the labels in ${config.path}: ${config.spec.entries.map((e) => e.label).join(", ")}`,
    );
  return writeSyslinuxConfig(target, { ...config.spec, defaultLabel: entry.label });
}
