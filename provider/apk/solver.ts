/**
 * Resolves a world (package names with constraints) against repository packages into a lock, with
 * apk-tools' rules (src/solver.c): one provider per name unless every provider of it is unversioned;
 * versioned provides are auto-selectable, unversioned ones only with provider_priority or when the
 * provider's own name is also required; among candidates prefer the higher version of the requested
 * name, then the higher version of the same package, then provider_priority, then the earlier
 * repository; install_if packages join when all their conditions hold in the solution; `!name`
 * conflicts. When no selection exists, the error is apk's "unable to select packages" report.
 *
 * This is the solver's interface; its ideas live apart: the package universe
 * (package-universe.ts), which provider apk prefers (provider-preference.ts), the search
 * (solver-search.ts), the changeset and install order (changeset.ts) and the failure report
 * (solver-failure.ts).
 */
import type { RepositoryPackage } from "./package-record";
import { type Dependency, formatDependency, parseDependency } from "./dependency";
import { PackageUniverse, type Pkg } from "./package-universe";
import { SOLVER_UPGRADE, type SolverFlags } from "./provider-preference";
import { solve, STEP_LIMIT, StepLimitReached, type SearchState } from "./solver-search";
import { changesetOrder, generateChangeset, type Change, type InstalledState } from "./changeset";
import { explainFailure } from "./solver-failure";

export {
  SOLVER_AVAILABLE,
  SOLVER_LATEST,
  SOLVER_REMOVE,
  SOLVER_UPGRADE,
  type SolverFlags,
} from "./provider-preference";
export { formatChange, type Change, type InstalledState } from "./changeset";

export interface LockEntry {
  name: string;
  version: string;
  arch?: string;
  checksum?: string;
  repository: string;
  size?: number;
  record: RepositoryPackage;
}

export interface Lock {
  /** Sorted by name. */
  packages: LockEntry[];
  /** The world as resolved: normalised dependency texts, sorted by name. */
  world: string[];
}

export class SolverError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SolverError";
  }
}

function parseWorld(world: readonly string[]): Dependency[] {
  // apk's words for a bad world entry (apk add), followed by what exactly is wrong with it.
  const invalid = (i: number, text: string, why: string): SolverError =>
    new SolverError(
      `world[${i}]: '${text}' is not a valid world dependency, format is name(@tag)([<>~=]version): ${why}`,
    );
  const deps = world.map((text, i) => {
    let dep: Dependency;
    try {
      dep = parseDependency(text);
    } catch (err) {
      throw invalid(i, text, (err as Error).message);
    }
    if (dep.broken)
      throw invalid(i, text, `invalid version ${JSON.stringify(dep.version)}; see "ramroot apk version -c"`);
    return dep;
  });
  // apk sorts the world by name before solving.
  return deps.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A solution, or a SolverError: apk's report of why there is none, or the search's step limit. */
function solveOrExplain(
  universe: PackageUniverse,
  world: readonly string[],
  worldDeps: Dependency[],
  flags: SolverFlags = {},
): SearchState {
  let state: SearchState | undefined;
  try {
    state = solve(universe, worldDeps, flags);
  } catch (err) {
    if (err instanceof StepLimitReached) {
      throw new SolverError(
        `ERROR: unable to select packages: gave up after ${STEP_LIMIT} search steps for world [${world.join(" ")}]`,
      );
    }
    throw err;
  }
  if (!state) throw new SolverError(explainFailure(universe, worldDeps, flags));
  return state;
}

function lockOf(state: SearchState, worldDeps: Dependency[]): Lock {
  const entries = state.selected
    .map(lockEntry)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.version < b.version ? -1 : 1));
  return { packages: entries, world: worldDeps.map(formatDependency) };
}

function lockEntry(pkg: Pkg): LockEntry {
  const r = pkg.rec;
  const e: LockEntry = { name: r.name, version: r.version, repository: r.repository, record: r };
  if (r.arch !== undefined) e.arch = r.arch;
  if (r.checksum !== undefined) e.checksum = r.checksum;
  if (r.size !== undefined) e.size = r.size;
  return e;
}

/**
 * Resolves `world` against `packages`. Throws SolverError with apk's "unable to select packages"
 * report when no selection satisfies it.
 */
export function resolvePackages(world: string[], packages: RepositoryPackage[], opts: { arch?: string } = {}): Lock {
  const worldDeps = parseWorld(world);
  const universe = new PackageUniverse(packages, opts.arch);
  return lockOf(solveOrExplain(universe, world, worldDeps), worldDeps);
}

export interface ChangeResolution {
  lock: Lock;
  /** In apk's order (removals where apk's changeset walk meets them). */
  changes: Change[];
}

/**
 * Resolves a world against repositories and an installed database, as `apk add`/`del`/`upgrade`
 * do: installed packages are kept unless the world or a newer preferred package needs otherwise
 * (`upgrade` drops their preference; `flags` carry apk's per-name hints: add --upgrade/--latest,
 * del), `name@tag` entries pin to tagged repositories, and the
 * result is apk's changeset (src/solver.c generate_changeset): what is purged, installed,
 * upgraded, downgraded or replaced, in apk's order.
 */
export function resolveChanges(
  world: string[],
  packages: RepositoryPackage[],
  state: InstalledState,
  opts: { arch?: string; upgrade?: boolean; flags?: SolverFlags } = {},
): ChangeResolution {
  const worldDeps = parseWorld(world);
  const universe = new PackageUniverse(packages, opts.arch, state.installed, state.installedTags);
  const flags: SolverFlags = {
    ...opts.flags,
    global: (opts.flags?.global ?? 0) | (opts.upgrade ? SOLVER_UPGRADE : 0),
  };
  const solved = solveOrExplain(universe, world, worldDeps, flags);
  return { lock: lockOf(solved, worldDeps), changes: generateChangeset(universe, solved, worldDeps, state) };
}

/** Orders a lock for installation: dependencies before dependents, deterministically, like apk's changeset. */
export function installOrder(lock: Lock): LockEntry[] {
  const universe = new PackageUniverse(lock.packages.map((e) => e.record));
  const byName = new Map<string, Pkg>();
  for (const pkg of universe.pkgs) if (!byName.has(pkg.name)) byName.set(pkg.name, pkg);
  const chosen = (name: string): Pkg | undefined => byName.get(name) ?? universe.existingProviders(name)[0]?.pkg;
  // World names first; anything a lock holds beyond them (not the case for a solver lock) follows by name.
  const roots = [...parseWorld(lock.world).map((d) => d.name), ...[...byName.keys()].sort()];
  const order = changesetOrder(universe, chosen, roots);
  const entryOf = new Map(lock.packages.map((e) => [e.record, e] as const));
  return order.map((p) => entryOf.get(p.rec)!);
}
