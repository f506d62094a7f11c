/**
 * Dependencies, provides and install_if entries: `[!]name[op version]`, parsed as apk-tools'
 * apk_dep_parse does. The op is any run of `<>=~` (`=`, `<`, `>`, `<=`, `>=`, `~`, `<~`, `>~`, `><`).
 */
import {
  DEPMASK_ANY,
  DEPMASK_CHECKSUM,
  VERSION_CONFLICT,
  isValidVersion,
  operatorMask,
  operatorText,
  versionMatches,
} from "./version";

export interface Dependency {
  /** The name depended on: a package name or a provided name such as `so:libc.musl-x86_64.so.1`. */
  name: string;
  /** Result mask (version.ts VERSION_*), DEPMASK_ANY when no version is given; VERSION_CONFLICT set for `!name`. */
  op: number;
  /** The version after the operator; absent for a bare name. */
  version?: string;
  /** `!name`: the name must not be installed (or, with a version, not in that range). */
  conflict: boolean;
  /** The version is not a valid apk version (apk accepts the text but marks the dependency broken). */
  broken: boolean;
  /** `name@tag`: packages of the repositories tagged `@tag` may satisfy it (apk's pinning). */
  tag?: string;
}

/** A name a package provides: `name` (unversioned, virtual) or `name=version`. */
export interface Provide {
  name: string;
  version?: string;
}

export class DependencyFormatError extends Error {
  constructor(
    readonly spec: string,
    reason: string,
  ) {
    super(
      `invalid dependency ${JSON.stringify(spec)}: ${reason}; accepted: [!]name[op version] with op one of = < > <= >= ~ <~ >~ ><`,
    );
    this.name = "DependencyFormatError";
  }
}

const COMPARER = /[<>=~]/;
const SEPARATOR = /[ \t\n]+/;

/** Parses one dependency; throws DependencyFormatError naming the text when it is malformed. */
export function parseDependency(spec: string): Dependency {
  let rest = spec;
  let op = 0;
  if (rest.startsWith("!")) {
    op |= VERSION_CONFLICT;
    rest = rest.slice(1);
  }
  const at = rest.search(COMPARER);
  let name = rest;
  let version: string | undefined;
  if (at >= 0) {
    name = rest.slice(0, at);
    const opMatch = /^[<>=~]+/.exec(rest.slice(at))![0];
    version = rest.slice(at + opMatch.length);
    // apk_blob_pull_dep fails when nothing follows the operator
    if (version === "") throw new DependencyFormatError(spec, `no version after ${JSON.stringify(opMatch)}`);
    const mask = operatorMask(opMatch);
    if (mask === 0) throw new DependencyFormatError(spec, `unknown operator ${JSON.stringify(opMatch)}`);
    op |= mask;
  } else {
    op |= DEPMASK_ANY;
  }
  if (name.length === 0) throw new DependencyFormatError(spec, "the name is empty");
  if (/[ \t\n]/.test(name)) throw new DependencyFormatError(spec, "the name contains white space");
  let tag: string | undefined;
  const atSign = name.indexOf("@");
  if (atSign >= 0) {
    tag = name.slice(atSign + 1);
    name = name.slice(0, atSign);
    if (name.length === 0) throw new DependencyFormatError(spec, "the name is empty");
    if (!/^[A-Za-z0-9._+-]+$/.test(tag))
      throw new DependencyFormatError(spec, `repository tag ${JSON.stringify(tag)} is not a tag name`);
  }
  const broken = version !== undefined && (op & DEPMASK_CHECKSUM) !== DEPMASK_CHECKSUM && !isValidVersion(version);
  const dep: Dependency =
    version === undefined
      ? { name, op, conflict: (op & VERSION_CONFLICT) !== 0, broken }
      : { name, op, version, conflict: (op & VERSION_CONFLICT) !== 0, broken };
  if (tag !== undefined) dep.tag = tag;
  return dep;
}

/** Splits a space separated field (D:, p:, i:) into its entries. */
export function splitDependencyField(text: string): string[] {
  return text.split(SEPARATOR).filter((s) => s.length > 0);
}

/** Parses a provides entry: `name` or `name=version` (apk stores provides as dependencies with `=`). */
export function parseProvide(spec: string): Provide {
  const dep = parseDependency(spec);
  if (dep.conflict) throw new DependencyFormatError(spec, "a provide cannot be a conflict");
  if (dep.version === undefined) return { name: dep.name };
  if (dep.op !== 1 /* VERSION_EQUAL */) throw new DependencyFormatError(spec, "a versioned provide must use =");
  if (dep.broken) throw new DependencyFormatError(spec, `${JSON.stringify(dep.version)} is not a valid apk version`);
  return { name: dep.name, version: dep.version };
}

/** The text apk prints for a dependency (apk_dep_snprintf): `!name@tag<op>version`. */
export function formatDependency(dep: Dependency): string {
  return `${dep.conflict ? "!" : ""}${dep.name}${dep.tag !== undefined ? `@${dep.tag}` : ""}${dep.version !== undefined ? operatorText(dep.op) + dep.version : ""}`;
}

export function formatProvide(p: Provide): string {
  return p.version === undefined ? p.name : `${p.name}=${p.version}`;
}

/**
 * Does a provider satisfy the dependency (apk_dep_is_provided)? `provider` is the version under which
 * the package provides the name (undefined for an unversioned provide), or null when nothing provides
 * the name. `checksum` is the providing package's identity, for `><` checksum dependencies. A conflict
 * dependency is satisfied by its own package (`self`).
 */
export function dependencySatisfiedBy(
  dep: Dependency,
  provider: { version: string | undefined; checksum?: string; self?: boolean } | null,
): boolean {
  if (provider === null) return dep.conflict;
  if (dep.conflict && provider.self) return true;
  if ((dep.op & ~VERSION_CONFLICT) === DEPMASK_CHECKSUM) {
    const match = provider.checksum !== undefined && provider.checksum === dep.version;
    return dep.conflict ? !match : match;
  }
  return versionMatches(provider.version, dep.op, dep.version);
}
