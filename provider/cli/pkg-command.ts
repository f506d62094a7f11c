import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomicSync } from "../atomic-file";
import type { Command } from "commander";
import { z } from "zod";
import { installPackages } from "../apk/install";
import { readIndexArchive } from "../apk/index-archive";
import { parseApkindex } from "../apk/apkindex";
import { buildPackage, type PackageSpec } from "../apk/package-builder";
import { readPackageFile, SCRIPT_NAMES, type ScriptName } from "../apk/package-file";
import { writeRepositoryIndex } from "../apk/repository-index";
import { loadRepositories, packageLocator } from "../apk/repository";
import { generateKeyPair, loadKeysDir, type Signer, type SignatureDigest } from "../apk/signature";
import { resolvePackages } from "../apk/solver";
import { apkCommandGroup } from "./apk-command";
import { FieldError, RamrootError } from "../ramroot-error";

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Reads a private key and names the signature after its public key file (`<key>.pub`'s name unless given). */
function signerFrom(flags: { signKey?: string; keyName?: string; signatureDigest?: string }): Signer | undefined {
  if (!flags.signKey) return undefined;
  let pem: string;
  try {
    pem = fs.readFileSync(flags.signKey, "utf8");
  } catch (err) {
    throw new FieldError("--sign-key", `cannot read ${JSON.stringify(flags.signKey)}: ${(err as Error).message}`);
  }
  const digest = z.enum(["sha1", "sha256", "sha512"]).safeParse(flags.signatureDigest ?? "sha1");
  if (!digest.success)
    throw new FieldError(
      "--signature-digest",
      `${JSON.stringify(flags.signatureDigest)} is not accepted: use sha1, sha256 or sha512`,
    );
  return {
    keyName: flags.keyName ?? `${path.basename(flags.signKey)}.pub`,
    privateKeyPem: pem,
    digest: digest.data as SignatureDigest,
  };
}

function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?[0-9]+$/.test(value)) throw new FieldError(flag, `${JSON.stringify(value)} is not an integer`);
  return Number(value);
}

/** `--owner PATH=USER:GROUP[:MODE]`: numeric ids, or names that apk resolves through the target's /etc/passwd and /etc/group. */
function parseOwners(values: string[]): PackageSpec["owners"] {
  const owners: NonNullable<PackageSpec["owners"]> = {};
  for (const value of values) {
    const m = /^(.+)=([A-Za-z0-9_.-]+):([A-Za-z0-9_.-]+)(?::([0-7]{3,4}))?$/.exec(value);
    if (!m)
      throw new FieldError(
        "--owner",
        `${JSON.stringify(value)} is not accepted: use PATH=USER:GROUP or PATH=USER:GROUP:MODE (ids or names, mode in octal), e.g. var/lib/app=app:app:0750`,
      );
    const [user, group] = [m[2]!, m[3]!];
    owners[m[1]!.replace(/^\/+/, "")] = {
      ...(/^[0-9]+$/.test(user) ? { uid: Number(user) } : { uname: user }),
      ...(/^[0-9]+$/.test(group) ? { gid: Number(group) } : { gname: group }),
      ...(m[4] ? { mode: parseInt(m[4], 8) } : {}),
    };
  }
  return owners;
}

interface BuildFlags {
  dir: string;
  name: string;
  version: string;
  arch: string;
  output: string;
  description?: string;
  url?: string;
  license?: string;
  origin?: string;
  maintainer?: string;
  commit?: string;
  depends: string[];
  provides: string[];
  installIf: string[];
  replaces: string[];
  triggers: string[];
  owner: string[];
  providerPriority?: string;
  replacesPriority?: string;
  buildTime?: string;
  signKey?: string;
  keyName?: string;
  signatureDigest?: string;
  [script: string]: unknown;
}

function scriptFlag(name: ScriptName): string {
  return name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

export function registerPkgCommands(program: Command): void {
  program
    .command("key")
    .description("signing keys")
    .command("generate")
    .description("generate an RSA key pair <dir>/<name>.rsa + <name>.rsa.pub, as abuild-keygen does")
    .requiredOption("--dir <dir>", "where to write the key pair")
    .requiredOption("--name <name>", "key name, e.g. me@example.org-5f1a2b3c")
    .option("--bits <bits>", "RSA modulus size", "4096")
    .action((flags: { dir: string; name: string; bits: string }) => {
      const pair = generateKeyPair(flags.dir, flags.name, { bits: integer("--bits", flags.bits) });
      process.stdout.write(`${pair.privateKeyPath}\n${pair.publicKeyPath}\n`);
    });

  const pkg = program.command("pkg").description("build your own APK packages");
  const build = pkg
    .command("build")
    .description("turn a directory plus metadata into a (signed) v2 .apk that apk-tools accepts")
    .requiredOption("--dir <dir>", "the tree to package (its paths become /...)")
    .requiredOption("--name <name>", "package name")
    .requiredOption("--version <version>", "package version, e.g. 1.0-r0")
    .requiredOption("--arch <arch>", "architecture, e.g. x86_64 or noarch")
    .requiredOption("--output <dir>", "directory to write <name>-<version>.apk into")
    .option("--description <text>")
    .option("--url <url>")
    .option("--license <license>")
    .option("--origin <name>")
    .option("--maintainer <who>")
    .option("--commit <id>")
    .option("--depends <dep>", "a dependency (repeatable)", collect, [])
    .option("--provides <name>", "a provided name (repeatable)", collect, [])
    .option("--install-if <dep>", "an install_if condition (repeatable)", collect, [])
    .option("--replaces <name>", "a package whose files it may overwrite (repeatable)", collect, [])
    .option("--triggers <glob>", "a directory glob that fires the trigger script (repeatable)", collect, [])
    .option("--owner <spec>", "PATH=UID:GID[:MODE] ownership of one path (repeatable)", collect, [])
    .option("--provider-priority <n>")
    .option("--replaces-priority <n>")
    .option("--build-time <epoch>", "builddate and mtime of every entry (default SOURCE_DATE_EPOCH or 0)")
    .option("--sign-key <file>", "private key (.rsa) to sign with")
    .option("--key-name <name>", "public key file name the signature names (default <sign-key>.pub)")
    .option("--signature-digest <digest>", "sha1 (default), sha256 or sha512");
  for (const script of SCRIPT_NAMES) build.option(`--${script} <file>`, `the .${script} script`);
  build.action((flags: BuildFlags) => {
    const scripts: PackageSpec["scripts"] = {};
    for (const script of SCRIPT_NAMES) {
      const file = flags[scriptFlag(script)];
      if (typeof file === "string") {
        try {
          scripts[script] = fs.readFileSync(file);
        } catch (err) {
          throw new FieldError(`--${script}`, `cannot read ${JSON.stringify(file)}: ${(err as Error).message}`);
        }
      }
    }
    const spec: PackageSpec = {
      name: flags.name,
      version: flags.version,
      arch: flags.arch,
      description: flags.description,
      url: flags.url,
      license: flags.license,
      origin: flags.origin,
      maintainer: flags.maintainer,
      commit: flags.commit,
      depends: flags.depends,
      provides: flags.provides,
      installIf: flags.installIf,
      replaces: flags.replaces,
      triggers: flags.triggers,
      providerPriority: integer("--provider-priority", flags.providerPriority),
      replacesPriority: integer("--replaces-priority", flags.replacesPriority),
      buildTime: integer("--build-time", flags.buildTime),
      scripts,
      owners: parseOwners(flags.owner),
    };
    const built = buildPackage(flags.dir, spec, signerFrom(flags));
    const out = path.join(flags.output, built.fileName);
    writeFileAtomicSync(out, built.apk);
    process.stdout.write(`${out}\n`);
  });

  program
    .command("repo")
    .description("your own APK repositories")
    .command("index")
    .description("write a (signed) APKINDEX.tar.gz for the .apk files in a directory")
    .requiredOption("--dir <dir>", "the repository's architecture directory, e.g. repo/x86_64")
    .option("--description <text>", "DESCRIPTION of the index", "ramroot repository")
    .option("--sign-key <file>", "private key (.rsa) to sign with")
    .option("--key-name <name>", "public key file name the signature names (default <sign-key>.pub)")
    .option("--signature-digest <digest>", "sha1 (default), sha256 or sha512")
    .option("--keys <dir>", "require every package to be signed by one of these keys")
    .action(
      (flags: {
        dir: string;
        description: string;
        signKey?: string;
        keyName?: string;
        signatureDigest?: string;
        keys?: string;
      }) => {
        const records = writeRepositoryIndex(flags.dir, {
          description: flags.description,
          signer: signerFrom(flags),
          keys: flags.keys ? loadKeysDir(flags.keys) : undefined,
        });
        process.stdout.write(`${path.join(flags.dir, "APKINDEX.tar.gz")}: ${records.length} package(s)\n`);
      },
    );

  const apk = apkCommandGroup(program);
  apk
    .command("verify")
    .description("check a .apk: signature, datahash and, with --index, the index checksum")
    .option("--keys <dir>", "trusted public keys (needed unless --allow-untrusted)")
    .option("--index <file>", "an APKINDEX.tar.gz whose record the package must match")
    .option("--allow-untrusted", "accept packages and indexes not signed by a trusted key")
    .argument("<file>", "the .apk")
    .action((file: string, flags: { keys?: string; index?: string; allowUntrusted?: boolean }) => {
      if (!flags.keys && !flags.allowUntrusted)
        throw new RamrootError(
          "input",
          "apk verify: give --keys DIR (the trusted public keys), or --allow-untrusted to check only the package's integrity",
        );
      const keys = flags.keys ? loadKeysDir(flags.keys) : new Map<string, Buffer>();
      const data = fs.readFileSync(file);
      let expected;
      if (flags.index) {
        const index = readIndexArchive(fs.readFileSync(flags.index), {
          keys,
          allowUntrusted: flags.allowUntrusted,
          source: flags.index,
        });
        const unchecked = readPackageFile(data, { source: file, keys, allowUntrusted: true });
        expected = parseApkindex(index.apkindexText, flags.index).find(
          (r) => r.name === unchecked.record.name && r.version === unchecked.record.version,
        );
        if (!expected)
          throw new RamrootError(
            "input",
            `${file}: ${unchecked.record.name}-${unchecked.record.version} is not in ${flags.index}`,
          );
      }
      const pkgFile = readPackageFile(data, { source: file, keys, expected, allowUntrusted: flags.allowUntrusted });
      const how =
        pkgFile.trust === "index"
          ? `matches the index checksum ${pkgFile.checksum}`
          : pkgFile.trust === "signature"
            ? `signed by ${pkgFile.signer}`
            : "UNTRUSTED (allowed)";
      process.stdout.write(
        `${file}: OK ${pkgFile.record.name}-${pkgFile.record.version}, ${how}${pkgFile.signer && pkgFile.trust === "index" ? `, signed by ${pkgFile.signer}` : ""}\n`,
      );
    });

  apk
    .command("install")
    .description("resolve packages from repositories and install them into a directory, scripts included")
    .requiredOption("--root <dir>", "the directory to install into")
    .requiredOption(
      "--repository <repo>",
      "a repository (URL or directory; repeatable, earlier wins ties)",
      collect,
      [],
    )
    .requiredOption("--keys <dir>", "trusted public keys (also written to /etc/apk/keys)")
    .option("--arch <arch>", "architecture of the image", "x86_64")
    .option("--allow-untrusted", "accept indexes and packages not signed by a trusted key")
    .option("--no-scripts", "do not run install scripts")
    .option("--cache-dir <dir>", "package cache (default ~/.cache/ramroot/apk/packages)")
    .argument("<packages...>", "world: package names or dependencies, e.g. busybox 'alpine-base>=3.20'")
    .action(
      async (
        world: string[],
        flags: {
          root: string;
          repository: string[];
          keys: string;
          arch: string;
          allowUntrusted?: boolean;
          scripts: boolean;
          cacheDir?: string;
        },
      ) => {
        if (flags.repository.length === 0) throw new FieldError("--repository", "give at least one repository");
        const keys = loadKeysDir(flags.keys);
        const progress = (msg: string) => process.stderr.write(`${msg}\n`);
        const repos = await loadRepositories(flags.repository, {
          arch: flags.arch,
          keys,
          allowUntrusted: flags.allowUntrusted,
          onProgress: progress,
        });
        const lock = resolvePackages(
          world,
          repos.flatMap((r) => r.packages),
          { arch: flags.arch },
        );
        // No repositories file: `apk add --root R --initdb --repository X` writes none either.
        const result = await installPackages({
          root: flags.root,
          lock,
          arch: flags.arch,
          keys,
          allowUntrusted: flags.allowUntrusted,
          cacheDir: flags.cacheDir,
          runScripts: flags.scripts,
          onProgress: progress,
          locate: packageLocator(repos),
        });
        for (const p of result.installed) process.stdout.write(`installed ${p.name}-${p.version}\n`);
        for (const s of result.skippedScripts)
          process.stderr.write(`WARNING: ${s.package}.${s.script} NOT RUN: ${s.detail}\n`);
        for (const s of result.failedScripts) process.stderr.write(`ERROR: ${s.detail}\n`);
        // As apk: the root and its database are complete; the exit code counts the flagged packages.
        process.stdout.write(
          result.errors > 0
            ? `${result.errors} error${result.errors > 1 ? "s" : ""}; ${result.installed.length} packages\n`
            : `OK: ${result.installed.length} packages\n`,
        );
        if (result.errors > 0) process.exitCode = Math.min(result.errors, 255);
      },
    );
}
