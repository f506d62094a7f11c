/**
 * Which provider of a name apk prefers (src/solver.c compare_providers), and the solver flags
 * (APK_SOLVERF_*) that change the preference: `apk add --upgrade/--latest`, `apk del`,
 * `apk upgrade [--available]`.
 */
import type { Pkg, Provider } from "./package-universe";
import { compareOptional, VERSION_GREATER, VERSION_LESS } from "./version";

/**
 * apk's solver flags on a package (APK_SOLVERF_*): set on the providers of a name the command names
 * (`apk add --upgrade/--latest NAME`, `apk del NAME`) or on the whole world (`apk upgrade`), and
 * passed down to what those packages depend on (all but REMOVE).
 */
export const SOLVER_UPGRADE = 1;
export const SOLVER_LATEST = 2;
export const SOLVER_REMOVE = 4;
export const SOLVER_AVAILABLE = 8;
export const INHERITABLE = SOLVER_UPGRADE | SOLVER_LATEST;

/** What the command asks for beyond the world: flags for the whole world and per name. */
export interface SolverFlags {
  /** For every package the world reaches (`apk upgrade`, `apk upgrade --latest`). */
  global?: number;
  /** For the providers of each name; a name listed here (even with 0) is decided before the others, as apk does with the names given to `apk add`/`del`. */
  names?: ReadonlyMap<string, number>;
}

/** What the choice for one name depends on beyond the providers themselves. */
export interface PreferenceContext {
  /** The tag whose repositories are preferred: a world entry's own tag, else the untagged repositories (apk's pinning_preferred). */
  preferredTag: string;
  /** Whether the requirements allow a tagged repository (apk's --latest then keeps its usual preferences). */
  pinned: boolean;
  /** The solver flags a candidate carries (SOLVER_*). */
  flags: (p: Provider) => number;
  /** Whether a candidate meets every requirement; only --latest weighs a candidate that does not (then it loses to one that does of the same version). */
  fits?: (p: Provider) => boolean;
}

const NO_CONTEXT: PreferenceContext = { preferredTag: "", pinned: false, flags: () => 0 };

/** apk's --latest: versions decide before the installed package and the preferred tag do. */
export function latestApplies(a: Provider, b: Provider, ctx: PreferenceContext): boolean {
  return !ctx.pinned && ((ctx.flags(a) | ctx.flags(b)) & SOLVER_LATEST) !== 0;
}

function tagPreferred(p: Pkg, ctx: PreferenceContext): boolean {
  return p.tags.has(ctx.preferredTag) || p.rec.installedSize === 0;
}

/** compare_providers: > 0 when `a` is preferred over `b`. */
export function comparePreference(a: Provider, b: Provider, ctx: PreferenceContext = NO_CONTEXT): number {
  const flags = ctx.flags(a) | ctx.flags(b);
  // upgrade --available: a package some repository has over one only installed
  const byAvailable = flags & SOLVER_AVAILABLE ? Number(a.pkg.inRepo) - Number(b.pkg.inRepo) : 0;
  if (byAvailable !== 0) return byAvailable;
  // --latest (without a pinned tag): neither the preferred tag nor the installed package counts, only versions
  if (!latestApplies(a, b, ctx)) {
    const byTag = Number(tagPreferred(a.pkg, ctx)) - Number(tagPreferred(b.pkg, ctx));
    if (byTag !== 0) return byTag;
    if (!(flags & (SOLVER_UPGRADE | SOLVER_REMOVE))) {
      const byInstalled = Number(a.pkg.installed) - Number(b.pkg.installed);
      if (byInstalled !== 0) return byInstalled;
    }
  }
  const byRequested = compareOptional(a.version, b.version);
  if (byRequested === VERSION_GREATER) return 1;
  if (byRequested === VERSION_LESS) return -1;
  if (a.pkg.name === b.pkg.name) {
    const byPrincipal = compareOptional(a.pkg.version, b.pkg.version);
    if (byPrincipal === VERSION_GREATER) return 1;
    if (byPrincipal === VERSION_LESS) return -1;
  }
  // provider_priority, then the installed one of equal versions unless it is being removed (apk
  // del's hint); apk-tools 3 weighs the priority first (provides-prio4), 2.14 the installed package
  const prio = (a.pkg.rec.providerPriority ?? 0) - (b.pkg.rec.providerPriority ?? 0);
  if (prio !== 0) return prio;
  const installedNow = flags & SOLVER_REMOVE ? 0 : Number(a.pkg.installed) - Number(b.pkg.installed);
  if (installedNow !== 0) return installedNow;
  if (ctx.fits) {
    const byFit = Number(ctx.fits(a)) - Number(ctx.fits(b));
    if (byFit !== 0) return byFit;
  }
  const repo = b.pkg.rec.repositoryOrder - a.pkg.rec.repositoryOrder;
  if (repo !== 0) return repo;
  return b.pkg.id - a.pkg.id;
}

export function byPreference(list: Provider[], ctx: PreferenceContext = NO_CONTEXT): Provider[] {
  return [...list].sort((a, b) => comparePreference(b, a, ctx));
}
