/**
 * `ramroot apk version|index|resolve`, following apk's conventions. The `apk` group is shared:
 * other areas add their verbs through apkCommandGroup().
 */
import type { Command } from "commander";
import { z } from "zod";
import { APK_ARCHES, hostApkArch } from "../arch";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseInstalledDb, parseWorldFile } from "../apk/installed-db";
import { loadRepositories, loadRepository } from "../apk/repository";
import {
  formatChange,
  installOrder,
  resolveChanges,
  resolvePackages,
  SOLVER_AVAILABLE,
  SOLVER_LATEST,
  SOLVER_REMOVE,
  SOLVER_UPGRADE,
  SolverError,
} from "../apk/solver";
import { compareVersions, isValidVersion } from "../apk/version";
import { RamrootError } from "../ramroot-error";

/**
 * A reader that closes the pipe early (`ramroot apk index ... | head`) ends the output, not the
 * program with an unhandled EPIPE: the command stops quietly, as apk does on SIGPIPE.
 */
function stopQuietlyOnClosedStdout(): void {
  if (process.stdout.listeners("error").some((l) => l === closedStdout)) return;
  process.stdout.on("error", closedStdout);
}

function closedStdout(err: NodeJS.ErrnoException): void {
  if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw err;
}

/** Creates the `apk` sub-command of `program`, or returns it when another area already did. */
export function apkCommandGroup(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === "apk");
  if (existing) return existing;
  return program
    .command("apk")
    .description("Alpine package tools: versions, indexes, dependency resolution, packages")
    .hook("preAction", stopQuietlyOnClosedStdout);
}

const repoOptions = z.object({
  keys: z.string().min(1, "--keys needs a directory").optional(),
  allowUntrusted: z.boolean().optional(),
  arch: z.enum(APK_ARCHES, {
    error: (iss) => `--arch ${JSON.stringify(iss.input)} is not accepted; use one of ${APK_ARCHES.join(", ")}`,
  }),
  cacheDir: z.string().min(1).optional(),
});

function parseRepoOptions(raw: unknown): z.infer<typeof repoOptions> {
  const parsed = repoOptions.safeParse(raw);
  if (!parsed.success) throw new RamrootError("input", parsed.error.issues.map((i) => i.message).join("; "));
  return parsed.data;
}

async function readStdinLines(): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

function fail(message: string): void {
  process.stderr.write(message.endsWith("\n") ? message : message + "\n");
  process.exitCode = 1;
}

export function registerApkCommands(program: Command): void {
  const apk = apkCommandGroup(program);

  apk
    .command("version")
    .description("Compare (-t A B) or validate (-c V...) versions; without arguments read them from standard input")
    .option(
      "-t, --test",
      'print <, = or > for A compared with B (pairs "A B" per line on standard input when no arguments)',
    )
    .option(
      "-c, --check",
      "print the invalid versions among the arguments (or standard input lines); exit with how many (at most 99), as apk does",
    )
    .argument("[versions...]")
    .action(async (versions: string[], o: { test?: boolean; check?: boolean }) => {
      if (o.test === o.check) return fail("apk version: give exactly one of -t (test) or -c (check)");
      if (o.test) {
        if (versions.length > 0) {
          if (versions.length !== 2)
            return fail(`apk version -t: expected two versions A B, got ${versions.length}: ${versions.join(" ")}`);
          process.stdout.write(compareVersions(versions[0]!, versions[1]!) + "\n");
          return;
        }
        const out: string[] = [];
        for (const [i, line] of (await readStdinLines()).entries()) {
          const pair = line.split(/\s+/);
          if (pair.length !== 2)
            return fail(`apk version -t: standard input line ${i + 1} ${JSON.stringify(line)} is not "A B"`);
          out.push(compareVersions(pair[0]!, pair[1]!));
        }
        process.stdout.write(out.map((l) => l + "\n").join(""));
        return;
      }
      const candidates = versions.length > 0 ? versions : await readStdinLines();
      const invalid = candidates.filter((v) => !isValidVersion(v));
      process.stdout.write(invalid.map((v) => v + "\n").join(""));
      // apk 2.14.4 exits with the number of invalid versions, at most 99 (its exit codes stop there).
      if (invalid.length > 0) process.exitCode = Math.min(invalid.length, 99);
    });

  apk
    .command("index")
    .description(
      "Read a repository index (APKINDEX.tar.gz file or URL, repository directory or URL, or plain APKINDEX text) and print it as JSON",
    )
    .option("--keys <dir>", "trusted public keys (like /etc/apk/keys)")
    .option("--allow-untrusted", "accept indexes without a trusted signature")
    .option("--arch <arch>", "architecture for repository layouts", hostApkArch())
    .option("--cache-dir <dir>", "index cache directory")
    .argument("<index>")
    .action(async (spec: string, raw: unknown) => {
      const o = parseRepoOptions(raw);
      try {
        const repo = await loadRepository(
          spec,
          {
            arch: o.arch,
            keysDir: o.keys,
            allowUntrusted: o.allowUntrusted,
            cacheDir: o.cacheDir,
            onProgress: (m) => process.stderr.write(m + "\n"),
          },
          0,
        );
        const out = {
          source: repo.indexUrl,
          signer: repo.signer ?? null,
          verified: repo.verified,
          description: repo.description ?? null,
          packageCount: repo.packages.length,
          packages: repo.packages.map(({ repository: _r, repositoryOrder: _o, ...rec }) => rec),
          skipped: repo.skipped.map(({ line, name, version, reason }) => ({ line, name, version, reason })),
        };
        process.stdout.write(JSON.stringify(out, null, 2) + "\n");
      } catch (err) {
        fail(`ERROR: ${(err as Error).message}`);
      }
    });

  apk
    .command("resolve")
    .description(
      "Resolve packages against repositories into an exact lock, printed as JSON. With an installed database (--root, or --installed and --world) it answers as apk add/del/upgrade would: the PACKAGES are added to the world, --del names leave it, and the changes are listed in apk's words",
    )
    .option(
      "--repository <repo>",
      'repository URL, directory, index file or plain APKINDEX (repeatable, in priority order); "@tag REPO" pins it as /etc/apk/repositories does',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option("--keys <dir>", "trusted public keys (like /etc/apk/keys)")
    .option("--allow-untrusted", "accept repositories without a trusted signature, and plain APKINDEX files")
    .option("--arch <arch>", "architecture", hostApkArch())
    .option("--cache-dir <dir>", "index cache directory")
    .option("--root <dir>", "a root whose lib/apk/db/installed and etc/apk/world are the starting point")
    .option("--installed <file>", "an installed database (lib/apk/db/installed) to start from")
    .option("--world <file>", "the world file (etc/apk/world) to start from")
    .option(
      "--del <name>",
      "take a name out of the world, as apk del (repeatable)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option("--upgrade", "as apk upgrade: installed packages are not preferred")
    .option(
      "--available",
      "with --upgrade, as apk upgrade --available: packages no repository has are replaced by ones a repository has (or removed)",
    )
    .option(
      "--upgrade-packages",
      "as apk add --upgrade: the PACKAGES and what they depend on are upgraded (their installed versions are not preferred)",
    )
    .option(
      "--latest",
      "as apk add --latest (with PACKAGES) or apk upgrade --latest (with --upgrade): the latest versions are taken, whatever is installed or pinned as preferred",
    )
    .argument("[packages...]")
    .action(
      async (
        packages: string[],
        raw: {
          repository: string[];
          root?: string;
          installed?: string;
          world?: string;
          del: string[];
          upgrade?: boolean;
          upgradePackages?: boolean;
          latest?: boolean;
          available?: boolean;
        },
      ) => {
        const o = parseRepoOptions(raw);
        if (raw.repository.length === 0)
          return fail("apk resolve: give at least one --repository URL|DIR|APKINDEX-file");
        if (raw.root && (raw.installed || raw.world))
          return fail("apk resolve: give --root, or --installed and --world, not both");
        const installedFile = raw.root ? path.join(raw.root, "lib/apk/db/installed") : raw.installed;
        const worldFile = raw.root ? path.join(raw.root, "etc/apk/world") : raw.world;
        const withState =
          installedFile !== undefined ||
          worldFile !== undefined ||
          raw.del.length > 0 ||
          raw.upgrade ||
          raw.upgradePackages ||
          raw.latest;
        if (raw.upgradePackages && packages.length === 0)
          return fail("apk resolve: --upgrade-packages upgrades the PACKAGES given; give at least one");
        if (raw.available && !raw.upgrade)
          return fail("apk resolve: --available is apk upgrade's option; give it with --upgrade");
        if (raw.latest && packages.length === 0 && !raw.upgrade)
          return fail("apk resolve: --latest applies to the PACKAGES given, or to the whole world with --upgrade");
        if (!withState && packages.length === 0)
          return fail("apk resolve: give the packages to resolve, or a starting point (--root, --installed, --world)");
        try {
          const tagged = raw.repository.map((spec) => {
            const m = /^@(\S+)\s+(.+)$/.exec(spec);
            return m ? { tag: m[1]!, spec: m[2]! } : { spec };
          });
          const repos = await loadRepositories(
            tagged.map((t) => t.spec),
            {
              arch: o.arch,
              keysDir: o.keys,
              allowUntrusted: o.allowUntrusted,
              cacheDir: o.cacheDir,
              onProgress: (m) => process.stderr.write(m + "\n"),
            },
          );
          const available = repos.flatMap((r, i) => {
            const tag = tagged[i]!.tag;
            return tag ? r.packages.map((p) => ({ ...p, repositoryTag: tag })) : r.packages;
          });
          if (!withState) {
            const lock = resolvePackages(packages, available, { arch: o.arch });
            const out = {
              world: lock.world,
              packages: lock.packages.map(({ record: _record, ...entry }) => entry),
              installOrder: installOrder(lock).map((e) => e.name),
            };
            process.stdout.write(JSON.stringify(out, null, 2) + "\n");
            return;
          }
          const read = (file: string | undefined, what: string): string => {
            if (file === undefined) return "";
            try {
              return fs.readFileSync(file, "utf8");
            } catch (err) {
              throw new RamrootError(
                "input",
                `${what} ${JSON.stringify(file)} cannot be read: ${(err as Error).message}`,
              );
            }
          };
          const installed = parseInstalledDb(read(installedFile, "--installed"), installedFile ?? "installed");
          for (const s of installed.skipped) process.stderr.write(`WARNING: ${s.message}\n`);
          const nameOf = (d: string) => d.replace(/^!/, "").split(/[@<>=~]/)[0]!;
          const removed = new Set(raw.del.map(nameOf));
          const added = packages.map(nameOf);
          const world = [
            ...parseWorldFile(read(worldFile, "--world")).filter(
              (w) => !removed.has(nameOf(w)) && !added.includes(nameOf(w)),
            ),
            ...packages,
          ];
          // apk's hints: the added names are decided first (with add's --upgrade/--latest), the deleted
          // ones lose their installed package's preference; upgrade --latest applies to the whole world
          const asked = (raw.upgradePackages ? SOLVER_UPGRADE : 0) | (raw.latest && !raw.upgrade ? SOLVER_LATEST : 0);
          const names = new Map<string, number>([
            ...added.map((n) => [n, asked] as const),
            ...[...removed].map((n) => [n, SOLVER_REMOVE] as const),
          ]);
          const { lock, changes } = resolveChanges(
            world,
            available,
            { installed: installed.records, installedTags: installed.tags },
            {
              arch: o.arch,
              upgrade: raw.upgrade,
              flags: {
                names,
                global: (raw.upgrade && raw.latest ? SOLVER_LATEST : 0) | (raw.available ? SOLVER_AVAILABLE : 0),
              },
            },
          );
          const out = {
            world: lock.world,
            packages: lock.packages.map(({ record: _record, ...entry }) => entry),
            changes: changes.map((c, i) => `(${i + 1}/${changes.length}) ${formatChange(c)}`),
          };
          process.stdout.write(JSON.stringify(out, null, 2) + "\n");
        } catch (err) {
          fail(err instanceof SolverError ? err.message : `ERROR: ${(err as Error).message}`);
        }
      },
    );
}
