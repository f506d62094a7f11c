import { execa } from "execa";
import { advOfLdlinux, ADV_TAG_BOOTONCE, bootOnceOf, updateImageAdv, withAdvEntry } from "./adv";
import { ImageTarget } from "./image-target";
import { LocalTarget } from "./local-target";
import { SshTarget, shellQuote } from "./ssh-target";
import { findLdlinuxDir, readSyslinuxConfig, writeSyslinuxConfig } from "./syslinux-config";
import type { BootTarget } from "./target";

/**
 * One-time trial boots. "Boot X once" lives in syslinux's ADV at the end of ldlinux.sys;
 * ldlinux clears it on disk before it loads the kernel, so whatever happens next (a panic with
 * panic=N, a watchdog, a power cut) the following boot is DEFAULT again. Promote makes the
 * trial permanent by pointing DEFAULT at it.
 */

async function ldlinuxPath(target: BootTarget): Promise<{ dir: string; file: string }> {
  const dir = await findLdlinuxDir(target);
  if (dir === undefined) throw new Error(`${target.describe()}: no ldlinux.sys found; syslinux is not installed on this boot partition`);
  return { dir, file: dir === "" ? "ldlinux.sys" : `${dir}/ldlinux.sys` };
}

/** The label set to boot once, or undefined when the ADV holds none. */
export async function readBootOnce(target: BootTarget): Promise<string | undefined> {
  const { file } = await ldlinuxPath(target);
  const bytes = await target.readFile(file);
  if (bytes === undefined) return undefined;
  return bootOnceOf(advOfLdlinux(bytes).entries);
}

async function extlinux(target: BootTarget, args: string[], dir: string): Promise<void> {
  if (target instanceof LocalTarget) {
    const result = await execa("extlinux", [...args, target.resolve(dir)], { reject: false, stdin: "ignore" });
    if (result.code === "ENOENT") throw new Error("extlinux is missing: install Debian's extlinux");
    if (result.exitCode !== 0) throw new Error(`${target.describe()}: extlinux ${args.join(" ")} failed: ${String(result.stderr || result.message).trim()}`);
    return;
  }
  if (target instanceof SshTarget) {
    const result = await target.runRemote(`extlinux ${args.map(shellQuote).join(" ")} ${shellQuote(target.remotePath(dir))}`);
    if (result.exitCode !== 0) throw new Error(`${target.describe()}: extlinux ${args.join(" ")} failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
    return;
  }
  throw new Error(`${target.describe()}: extlinux runs only on local and ssh targets`);
}

async function changeImageBootOnce(target: ImageTarget, label: string | undefined): Promise<void> {
  await updateImageAdv(target.image, target.spec.partition, (entries) => withAdvEntry(entries, ADV_TAG_BOOTONCE, label === undefined ? undefined : Buffer.from(label, "latin1")));
}

/**
 * Boots `label` on the next boot only. The label must be an entry of the current config. On an
 * image the ADV is written in place; on a mounted or ssh target `extlinux --once` does it. The
 * result is read back.
 */
export async function setBootOnce(target: BootTarget, label: string): Promise<void> {
  const config = await readSyslinuxConfig(target);
  if (!config) throw new Error(`${target.describe()}: no syslinux config; write one before setting a one-time boot`);
  const entry = config.spec.entries.find((e) => e.label.toLowerCase() === label.toLowerCase());
  if (!entry) {
    throw new Error(`label: got ${JSON.stringify(label)}; expected one of the labels in ${config.path}: ${config.spec.entries.map((e) => e.label).join(", ")}`);
  }
  const { dir } = await ldlinuxPath(target);
  if (target instanceof ImageTarget) await changeImageBootOnce(target, entry.label);
  else await extlinux(target, [`--once=${entry.label}`], dir);
  const now = await readBootOnce(target);
  if (now !== entry.label) throw new Error(`${target.describe()}: boot-once reads back as ${JSON.stringify(now)} after setting ${JSON.stringify(entry.label)}`);
}

/** Removes a pending one-time boot (fine when none is set). */
export async function clearBootOnce(target: BootTarget): Promise<void> {
  if ((await readBootOnce(target)) === undefined) return;
  const { dir } = await ldlinuxPath(target);
  if (target instanceof ImageTarget) await changeImageBootOnce(target, undefined);
  else await extlinux(target, ["--clear-once"], dir);
  const now = await readBootOnce(target);
  if (now !== undefined) throw new Error(`${target.describe()}: boot-once still reads ${JSON.stringify(now)} after clearing it`);
}

/** Makes `label` the DEFAULT (after a good trial boot). Resolves to the config written. */
export async function promote(target: BootTarget, label: string): Promise<{ path: string; sha256: string }> {
  const config = await readSyslinuxConfig(target);
  if (!config) throw new Error(`${target.describe()}: no syslinux config to promote ${JSON.stringify(label)} in`);
  const entry = config.spec.entries.find((e) => e.label.toLowerCase() === label.toLowerCase());
  if (!entry) throw new Error(`label: got ${JSON.stringify(label)}; expected one of the labels in ${config.path}: ${config.spec.entries.map((e) => e.label).join(", ")}`);
  return writeSyslinuxConfig(target, { ...config.spec, defaultLabel: entry.label });
}
