/**
 * The boot schemes ramroot knows, and which one a target uses. A new scheme is a folder beside
 * this file and one entry in SCHEMES.
 */
import type { BootTarget } from "../boot-target";
import { FieldError, TargetError } from "../../ramroot-error";
import type { BootScheme, BootSchemeName } from "./boot-scheme";
import { syslinuxScheme } from "./syslinux/scheme";
import { uefiScheme } from "./uefi/scheme";

/** In the order they are looked for; the last is what a partition with no boot loader found is taken for. */
const SCHEMES: readonly BootScheme[] = [syslinuxScheme, uefiScheme];
const FALLBACK: BootScheme = syslinuxScheme;

/**
 * Why a mounted-directory or ssh target's directory is not a boot partition of any scheme, or
 * undefined when it is one. A path that holds no boot loader is most likely not where the
 * partition is mounted (a typo, or the machine's RAM root): writing slots there would boot
 * nothing. A disk image's FAT is read from its own boot sector and needs no such check.
 */
export async function bootPartitionProblem(target: BootTarget): Promise<string | undefined> {
  if (target.spec.kind === "image") return undefined;
  const problems: string[] = [];
  for (const scheme of SCHEMES) {
    const problem = await scheme.partitionProblem(target);
    if (problem === undefined) return undefined;
    problems.push(problem);
  }
  return problems.join("; ");
}

/** A target whose directory is not a boot partition (bootPartitionProblem). */
export class NotBootPartitionError extends TargetError {}

/** Throws `bootPartitionProblem`'s reason, if there is one. */
export async function assertBootPartition(target: BootTarget): Promise<void> {
  const problem = await bootPartitionProblem(target);
  if (problem !== undefined) throw new NotBootPartitionError(problem);
}

/** What each scheme's boot loader is, as an error names what a partition holds. */
const LOADER: Record<BootSchemeName, string> = {
  syslinux: "syslinux (ldlinux.sys)",
  uefi: "systemd-boot (loader/loader.conf)",
};

/** How a partition gets each scheme's boot loader, as an error says it. */
const MAKE: Record<BootSchemeName, string> = {
  syslinux: "`ramroot disk create --scheme syslinux`, or `syslinux --install` on the partition",
  uefi: "`ramroot disk create --scheme uefi`, or systemd-boot and a loader/ directory on the ESP",
};

/**
 * Checks an explicit scheme (the `scheme` input) against the partition: the boot loader found
 * there must be that scheme's. A partition with no boot loader found is taken for syslinux (as
 * without the input), so it only contradicts "uefi". Throws a FieldError naming `field`, the
 * value and what the partition holds; nothing is written.
 */
export async function assertSchemeOn(target: BootTarget, wanted: BootSchemeName, field = "scheme"): Promise<void> {
  const installed: BootSchemeName[] = [];
  for (const scheme of SCHEMES) if (await scheme.installedOn(target)) installed.push(scheme.name);
  if (installed.includes(wanted) && installed[0] === wanted) return;
  if (installed.length === 0 && wanted === FALLBACK.name) return;
  const holds =
    installed.length === 0
      ? `no boot loader (neither ${Object.values(LOADER).join(" nor ")})`
      : installed.map((n) => LOADER[n]).join(" and ");
  throw new FieldError(
    field,
    `got ${JSON.stringify(wanted)}; ${target.describe()} holds ${holds}`,
    installed.length === 0
      ? `make it a ${wanted} boot partition first (${MAKE[wanted]}); nothing was written`
      : `set ${field}: ${JSON.stringify(installed[0])} (or leave it out: the partition's own is used); nothing was written`,
  );
}

/** Looked up once per opened target: a look costs a round trip on ssh. */
const seen = new WeakMap<BootTarget, BootScheme>();

/** The scheme whose boot loader is installed on the target; syslinux when none is found (as before schemes). */
export async function schemeOf(target: BootTarget): Promise<BootScheme> {
  const known = seen.get(target);
  if (known) return known;
  let found = FALLBACK;
  for (const scheme of SCHEMES) {
    if (await scheme.installedOn(target)) {
      found = scheme;
      break;
    }
  }
  seen.set(target, found);
  return found;
}
