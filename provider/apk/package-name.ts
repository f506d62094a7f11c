/**
 * What a package name and version may be. Both become file names (`<name>-<version>.apk` in a
 * repository and the cache, scripts in lib/apk/exec), so an index naming a package
 * `../../../../tmp/x/pkgname` must be refused before anything is read or written. Names are
 * what abuild accepts for pkgname: letters, digits and `._+-`, not starting with `.` or `-`;
 * versions are apk versions (version.ts), which cannot hold `/`.
 */
import { isValidVersion } from "./version";

const NAME = /^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/;

/** Why `name` is no package name, or undefined when it is one. */
export function packageNameProblem(name: string): string | undefined {
  if (NAME.test(name)) return undefined;
  return `package name ${JSON.stringify(name)} is not accepted: expected letters, digits and . _ + - (not starting with . or -), no "/" and no ".."`;
}

/** Why `version` is no apk version, or undefined when it is one. */
export function packageVersionProblem(name: string, version: string): string | undefined {
  if (isValidVersion(version) && !version.includes("/")) return undefined;
  return `package ${name}: version ${JSON.stringify(version)} is not a valid apk version (such as 1.2.3-r0)`;
}
