/**
 * The safe switch: the one engine operation that makes a boot config (its default entry) what a
 * partition boots, for the SyslinuxConfig resource and the CLI alike, whatever the boot scheme.
 * Under the caller's lease: the default entry must boot what its slot holds, a pending once-boot
 * of a label the new config lacks is cleared (a boot loader would fail on it), and the write is
 * compared and swapped against the config as read here.
 */
import type { BootTarget } from "./boot-target";
import type { Lease } from "./lease";
import { assertLabelBootable } from "./slot";
import type { BootConfig, BootConfigSpec } from "./schemes/boot-scheme";
import { schemeOf } from "./schemes/registry";
import { sha256Hex } from "../file-hash";
import { FieldError, RamrootError } from "../ramroot-error";

export interface SwitchOptions {
  /** the lease the caller holds on the target: checked right before the write */
  lease: Lease;
  /** the config as the caller read it, when it did (the compare-and-swap compares against it) */
  read?: BootConfig | undefined;
  /** told when a stale once-boot was cleared */
  onStaleOnce?: (label: string) => void;
  /** runs after the checks, before anything is written */
  beforeWrite?: () => void;
}

/** Writes `spec` as the target's boot config, safely (see above). Resolves to where it went and its hash. */
export async function switchBootConfig(
  target: BootTarget,
  spec: BootConfigSpec,
  opts: SwitchOptions,
): Promise<{ path: string; sha256: string }> {
  const scheme = await schemeOf(target);
  const found = "read" in opts ? opts.read : await scheme.readConfig(target);
  await assertLabelBootable(target, spec, spec.defaultLabel, found?.path ?? (await scheme.configPath(target)));
  opts.beforeWrite?.();
  const stale = await scheme.clearStaleBootOnce(target, spec);
  if (stale !== undefined) opts.onStaleOnce?.(stale);
  return scheme.writeConfig(target, spec, {
    expectedSha256: found ? sha256Hex(found.text) : null,
    beforeCommit: () => opts.lease.assertHeld(target),
  });
}

/** Makes `label`, an entry of the current config, the default (after a good trial boot). */
export async function promote(target: BootTarget, label: string): Promise<{ path: string; sha256: string }> {
  const scheme = await schemeOf(target);
  const config = await scheme.readConfig(target);
  if (!config)
    throw new RamrootError("input", `${target.describe()}: no boot config to promote ${JSON.stringify(label)} in`);
  const entry = config.spec.entries.find((e) => e.label.toLowerCase() === label.toLowerCase());
  if (!entry)
    throw new FieldError(
      "label",
      `got ${JSON.stringify(label)}; expected one of the labels in ${config.path}: ${config.spec.entries.map((e) => e.label).join(", ")}`,
    );
  return scheme.writeConfig(target, { ...config.spec, defaultLabel: entry.label });
}
