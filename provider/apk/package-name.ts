/**
 * What a package name and version may be. Both become file names (`<name>-<version>.apk` in a
 * repository and the cache, scripts in lib/apk/exec), so an index naming a package
 * `../../../../tmp/x/pkgname` must be refused before anything is read or written.
 *
 * Names are what abuild accepts for pkgname: letters, digits and `._+-`, not starting with `.`
 * or `-`, and never `..`. A version is any text apk 2.14 reads (it stores an index's V: as it
 * is and orders even the ones `apk version -c` calls invalid, version.ts), except what could
 * leave a directory or break a line: `/`, `..`, NUL, a line break.
 */
const NAME = /^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/;
const UNSAFE = /[/\0\n\r]|\.\./;

/** Why `name` is no package name, or undefined when it is one. */
export function packageNameProblem(name: string): string | undefined {
  if (NAME.test(name) && !name.includes("..")) return undefined;
  return `package name ${JSON.stringify(name)} is not accepted: expected letters, digits and . _ + - (not starting with . or -), no "/" and no ".."`;
}

/** Why `version` cannot be a package's version, or undefined when it can. */
export function packageVersionProblem(name: string, version: string): string | undefined {
  if (version === "") return `package ${name} has an empty version`;
  if (!UNSAFE.test(version)) return undefined;
  return `package ${name}: version ${JSON.stringify(version)} is not accepted: a version holds no "/", "..", NUL or line break`;
}
