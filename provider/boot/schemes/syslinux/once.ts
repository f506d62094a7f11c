import { ADV_SIZE, ADV_TAG_BOOTONCE, advOfLdlinux, bootOnceOf, renderAdv, withAdvEntry } from "./adv";
import type { BootTarget } from "../../boot-target";
import { entryByLabel, findLdlinuxDir, readSyslinuxConfig, type SyslinuxConfigSpec } from "./config";
import { FieldError, TargetError } from "../../../ramroot-error";

/**
 * One-time trial boots. "Boot X once" lives in syslinux's ADV at the end of ldlinux.sys;
 * ldlinux clears it on disk before it loads the kernel, so whatever happens next (a panic with
 * panic=N, a watchdog, a power cut) the following boot is DEFAULT again. Promote makes the
 * trial permanent by pointing DEFAULT at it. The ADV is written through the target's in-place
 * write, whatever the target is.
 */

/** The directory holding ldlinux.sys ("" for the partition's root); an error when syslinux is not installed. */
async function ldlinuxDir(target: BootTarget): Promise<string> {
  const dir = await findLdlinuxDir(target);
  if (dir === undefined)
    throw new TargetError(
      `${target.describe()}: no ldlinux.sys found; syslinux is not installed on this boot partition`,
      "install it (`syslinux --install` on the partition, or a new disk from `ramroot disk create`), or use scheme uefi on an EFI system partition",
    );
  return dir;
}

function ldlinuxPath(dir: string): string {
  return dir === "" ? "ldlinux.sys" : `${dir}/ldlinux.sys`;
}

/**
 * Sets (or with undefined clears) the once-boot in the ADV of `dir`'s ldlinux.sys, as
 * `extlinux --once` does: both ADV copies, the file's last two sectors, rewritten in place
 * (the boot sector records where ldlinux.sys lies, so the file must not move).
 */
async function writeBootOnceIn(target: BootTarget, dir: string, label: string | undefined): Promise<void> {
  const rel = ldlinuxPath(dir);
  const bytes = await target.readFile(rel);
  if (bytes === undefined) throw new TargetError(`${target.describe()}: ${rel} disappeared`);
  const { entries } = advOfLdlinux(bytes);
  const adv = renderAdv(
    withAdvEntry(entries, ADV_TAG_BOOTONCE, label === undefined ? undefined : Buffer.from(label, "latin1")),
  );
  await target.overwriteInPlace(rel, bytes.length - 2 * ADV_SIZE, adv);
}

/** The label set to boot once, or undefined when the ADV holds none. */
export async function readBootOnce(target: BootTarget): Promise<string | undefined> {
  const dir = await ldlinuxDir(target);
  return readBootOnceIn(target, dir);
}

/** The once-boot in the ADV of `dir`'s ldlinux.sys (dir "" is the partition's root). */
async function readBootOnceIn(target: BootTarget, dir: string): Promise<string | undefined> {
  const bytes = await target.readFile(ldlinuxPath(dir));
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
  if (!config)
    throw new TargetError(`${target.describe()}: no syslinux config; write one before setting a one-time boot`);
  const entry = entryByLabel(config.spec, label);
  if (!entry) {
    throw new FieldError(
      "label",
      `got ${JSON.stringify(label)}; expected one of the labels in ${config.path}: ${config.spec.entries.map((e) => e.label).join(", ")}`,
    );
  }
  const dir = await ldlinuxDir(target);
  await writeBootOnceIn(target, dir, entry.label);
  const now = await readBootOnce(target);
  if (now !== entry.label)
    throw new TargetError(
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
  await writeBootOnceIn(target, dir, undefined);
  const now = await readBootOnceIn(target, dir);
  if (now !== undefined)
    throw new TargetError(`${target.describe()}: boot-once still reads ${JSON.stringify(now)} after clearing it`);
}
