/**
 * `ramroot init`: a repository of the owner's own for one machine, with ramroot as an installed
 * dependency (from the registry, a packed tarball or a git URL). Writes the files and, when
 * ramroot comes from a tarball, the lock that lets npm install it offline; installing is the
 * caller's (the CLI runs npm).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { z } from "zod";
import { parseInput } from "../input-error";
import { fileIntegrity, ownerLock, type PackageLock, type PackedManifest } from "./dependency-lock";
import { DEFAULT_PACKAGES, ownerFiles } from "./owner-files";
import { ConflictError, FieldError, InternalError, RamrootError } from "../ramroot-error";

const NAME = /^[A-Za-z0-9_.-]+$/;

const initOptionsSchema = z.strictObject({
  dir: z.string().min(1, "expected a directory"),
  stack: z.string().regex(NAME, "expected a stack name of letters, digits, _, . or -").default("machine"),
  yaml: z.boolean().default(false),
  /** how package.json names ramroot; default: ^<the running version>, from the registry */
  ramroot: z.string().min(1, "expected a version range, a tarball (file:ramroot-0.1.0.tgz) or a git URL").optional(),
  repositories: z.array(z.string().min(1, "expected a URL or a directory")).default([]),
  keys: z.array(z.string().min(1, "expected a key file or directory")).default([]),
  packages: z
    .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.+@<>=~-]*$/, "expected a package name, with a constraint or not"))
    .min(1, "expected at least one package")
    .optional(),
});

export type InitOptions = z.input<typeof initOptionsSchema>;

export interface InitResult {
  dir: string;
  /** what was written, relative to dir */
  files: string[];
  stack: string;
  /** package-lock.json was written: npm takes every package from its cache */
  locked: boolean;
}

/** The ramroot package this code runs from: the nearest package.json named ramroot above it. */
function ownPackageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json");
    if (
      fs.existsSync(manifest) &&
      (JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: string }).name === "ramroot"
    )
      return dir;
    if (path.dirname(dir) === dir) throw new InternalError(`no ramroot package.json above ${__dirname}`);
  }
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, "utf8")) as T;
}

/** A local path as the stack names it: relative inside the repository, absolute outside; URLs as they are. */
function stackPath(value: string, dir: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  const absolute = path.resolve(value);
  if (!fs.existsSync(absolute))
    throw new RamrootError("input", `${JSON.stringify(value)}: no such file or directory (${absolute})`);
  const relative = path.relative(dir, absolute);
  return relative.startsWith("..") || path.isAbsolute(relative) ? absolute : relative;
}

/** A tarball spec (`file:x.tgz`, `./x.tgz`, `/abs/x.tgz`) as an absolute path; undefined for anything else. */
function tarballOf(spec: string): string | undefined {
  const file = spec.replace(/^file:/, "");
  if (!/\.(tgz|tar\.gz)$/.test(file)) return undefined;
  const absolute = path.resolve(file);
  if (!fs.existsSync(absolute))
    throw new FieldError("--ramroot", `${JSON.stringify(spec)}: no such file (${absolute})`);
  return absolute;
}

async function packedManifest(tarball: string): Promise<PackedManifest> {
  const r = await execa("tar", ["-xzOf", tarball, "package/package.json"], { reject: false, stdin: "ignore" });
  if (r.exitCode !== 0)
    throw new FieldError(
      "--ramroot",
      `${tarball} is not a packed npm package (no package/package.json): ${r.stderr.trim()}`,
    );
  const manifest = JSON.parse(r.stdout) as PackedManifest;
  if (manifest.name !== "ramroot")
    throw new FieldError("--ramroot", `${tarball} holds the package ${JSON.stringify(manifest.name)}, not ramroot`);
  return manifest;
}

/** The lock of the ramroot this runs from (a checkout's package-lock.json, a package's npm-shrinkwrap.json). */
function ownLock(root: string): PackageLock | undefined {
  for (const name of ["npm-shrinkwrap.json", "package-lock.json"]) {
    const file = path.join(root, name);
    if (fs.existsSync(file)) return readJson<PackageLock>(file);
  }
  return undefined;
}

/** Makes the repository in `dir` (created when missing); refuses to overwrite any file. */
export async function initRepository(input: InitOptions): Promise<InitResult> {
  const opts = parseInput(initOptionsSchema, input, "init options");
  const dir = path.resolve(opts.dir);
  const root = ownPackageRoot();
  const own = readJson<{ version: string; allowScripts?: Record<string, boolean> }>(path.join(root, "package.json"));
  const name = path.basename(dir).replace(/[^A-Za-z0-9_.-]+/g, "-");
  if (opts.repositories.length === 0 && opts.keys.length > 0)
    throw new FieldError("--key", "keys go with --repository (Alpine's own repositories use Alpine's keys)");
  if (opts.repositories.length > 0 && opts.keys.length === 0)
    throw new FieldError(
      "--repository",
      "name the repository's public signing keys with --key (a .pub file or a directory of them)",
    );

  const tarball = opts.ramroot !== undefined ? tarballOf(opts.ramroot) : undefined;
  const spec = tarball ? `file:${path.relative(dir, tarball)}` : (opts.ramroot ?? `^${own.version}`);
  const ramrootLock = tarball ? ownLock(root) : undefined;
  const lock =
    tarball && ramrootLock
      ? ownerLock({ name, spec, integrity: fileIntegrity(tarball), packed: await packedManifest(tarball), ramrootLock })
      : undefined;
  // npm warns about install scripts that allowScripts does not decide; ramroot's decisions go
  // along, those about packages this repository installs when the lock says which.
  const installed = lock && new Set(Object.keys(lock.packages).map((at) => at.replace(/^.*node_modules\//, "")));
  const allowScripts = Object.fromEntries(
    Object.entries(own.allowScripts ?? {}).filter(([pkg]) => !installed || installed.has(pkg)),
  );
  const files = ownerFiles({
    name,
    stack: opts.stack,
    program: opts.yaml ? "yaml" : "typescript",
    ramrootSpec: spec,
    repositories: opts.repositories.map((r) => stackPath(r, dir)),
    keys: opts.keys.map((k) => stackPath(k, dir)),
    packages: opts.packages ?? DEFAULT_PACKAGES,
    allowScripts,
  });
  if (lock) files["package-lock.json"] = `${JSON.stringify(lock, null, 2)}\n`;

  const existing = Object.keys(files).filter((f) => fs.existsSync(path.join(dir, f)));
  if (existing.length > 0)
    throw new ConflictError(
      `${dir} already has ${existing.join(", ")}: init writes a new repository and overwrites nothing`,
      "choose an empty directory",
    );
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), content, { flag: "wx" });
  }
  // The state directory the file backend in Pulumi.yaml names (kept out of git).
  fs.mkdirSync(path.join(dir, "state"), { recursive: true });
  return { dir, files: Object.keys(files), stack: opts.stack, locked: lock !== undefined };
}
