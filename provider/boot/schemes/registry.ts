/**
 * The boot schemes ramroot knows, and which one a target uses. A new scheme is a folder beside
 * this file and one entry in SCHEMES.
 */
import type { BootTarget } from "../boot-target";
import { TargetError } from "../../ramroot-error";
import type { BootScheme } from "./boot-scheme";
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
