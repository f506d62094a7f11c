/**
 * A boot scheme: how a boot partition says which entry boots (syslinux.cfg's DEFAULT; systemd-boot's
 * loader.conf `default`) and how it boots another one once (syslinux's ADV; the machine's
 * LoaderEntryOneShot EFI variable). A scheme works through a target's capabilities (files, the
 * in-place write, the machine's shell) and never asks which transport it is on. Each scheme is a
 * folder here and one line in registry.ts.
 */
import type { BootTarget } from "../boot-target";
import type { SyslinuxConfigSpec } from "./syslinux/config";

/** The boot config every scheme takes: a default label and one entry per slot (kernel, initrds, command line). */
export type BootConfigSpec = SyslinuxConfigSpec;

/** A boot config as read from a target: where the switch writes, the text it compares and swaps, the spec. */
export interface BootConfig {
  path: string;
  text: string;
  spec: BootConfigSpec;
}

export interface WriteBootConfigOptions {
  /**
   * Compare-and-swap: the sha256 of the config text as the writer read it (null: there was none).
   * The config is read again right before the write; if it changed, nothing is written.
   */
  expectedSha256?: string | null;
  /** runs right before the write (a lease check) */
  beforeCommit?: () => Promise<void>;
}

export type BootSchemeName = "syslinux" | "uefi";

export interface BootScheme {
  readonly name: BootSchemeName;
  /** The scheme's boot loader is installed on the target (found where it looks). */
  installedOn(target: BootTarget): Promise<boolean>;
  /** Why the target's directory is not a boot partition of this scheme, or undefined when it is one. */
  partitionProblem(target: BootTarget): Promise<string | undefined>;
  /** Where the config the switch writes lives (or will), relative to the partition root. */
  configPath(target: BootTarget): Promise<string>;
  /** The config as the boot loader will read it; undefined when there is none. */
  readConfig(target: BootTarget): Promise<BootConfig | undefined>;
  /** The text `readConfig` returns once `spec` is written (what "already holds this config" compares). */
  renderConfig(spec: BootConfigSpec): string;
  /** Writes the config: entries first, the default last, each file atomically. */
  writeConfig(
    target: BootTarget,
    spec: BootConfigSpec,
    opts?: WriteBootConfigOptions,
  ): Promise<{ path: string; sha256: string }>;
  /** The label set to boot once, or undefined when none is pending (or the scheme cannot know it here). */
  readBootOnce(target: BootTarget): Promise<string | undefined>;
  /** Boots `label` (an entry of the current config) on the next boot only; read back. */
  setBootOnce(target: BootTarget, label: string): Promise<void>;
  /** Removes a pending one-time boot (fine when none is set). */
  clearBootOnce(target: BootTarget): Promise<void>;
  /** Clears a pending one-time boot of a label `spec` lacks, and returns that label. */
  clearStaleBootOnce(target: BootTarget, spec: BootConfigSpec): Promise<string | undefined>;
}
