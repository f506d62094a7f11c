/**
 * Installing the workload's package set into a directory: ramroot's installer (bench/install-root.ts,
 * i.e. `apk add --root`: resolve, fetch + verify, scripts, unpack, database) against apko's
 * build-minirootfs reading the same local repository with the same key. Both start from
 * empty caches every run.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { stringify as toYaml } from "yaml";
import { alternate, roundRatios, timeCommand, type Variant } from "./harness";
import type { BenchContext, SectionResult } from "./section";
import type { Workload } from "./workload";

/** Paths and entry counts of a tree, to check both tools installed the same package set. */
function countTree(dir: string): number {
  return fs.readdirSync(dir, { recursive: true }).length;
}

export async function benchInstall(w: Workload, ctx: BenchContext, repoRoot: string): Promise<SectionResult> {
  const notes: string[] = [];
  let apko: string | undefined;
  try {
    apko = execFileSync("bash", [path.join(repoRoot, "bench", "build-apko.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    })
      .trim()
      .split("\n")
      .pop();
  } catch (err) {
    notes.push(`apko could not be built from the Go module proxy: ${(err as Error).message.split("\n")[0]}`);
  }
  const dir = path.join(ctx.scratch, "install");
  fs.mkdirSync(dir, { recursive: true });
  const packages = [...w.packages, "linux-lts"];
  const apkoConfig = path.join(dir, "apko.yaml");
  fs.writeFileSync(
    apkoConfig,
    toYaml({
      contents: {
        repositories: [w.repo.repository],
        keyring: fs.readdirSync(w.repo.keysDir).map((k) => path.join(w.repo.keysDir, k)),
        packages,
      },
      archs: ["x86_64"],
    }),
  );
  const installRoot = path.join(__dirname, "install-root.js");
  // Every run writes into new directories, and nothing is removed until the bench ends: on ext4
  // without a journal (this machine's /), creating a file skips, one inode-table lookup each,
  // every inode freed in the last 60-360 s, so removing the last run's ~5,500 paths just before
  // this one made ramroot's own creates quadratic (3.5-5 s of system time instead of ~0.5-1 s),
  // a cost apko, writing one tar, never pays. Empty caches every run all the same.
  let runs = 0;
  let dest = "";
  let cache = "";
  let tar = "";
  let xdg = "";
  const fresh = () => {
    const run = path.join(dir, `run-${++runs}`);
    dest = path.join(run, "root");
    cache = path.join(run, "cache");
    tar = path.join(run, "apko.tar");
    xdg = path.join(run, "xdg-cache");
    fs.mkdirSync(run);
  };
  let ramrootPaths = 0;
  let apkoTar = "";
  const variants: Variant[] = [
    {
      label: "ramroot install",
      command: `node bench/install-root.js ${w.config.gzip} ROOT CACHE`,
      before: fresh,
      run: () => timeCommand(process.execPath, [installRoot, w.config.gzip, dest, cache]),
      check: () => {
        ramrootPaths = countTree(dest);
        if (!fs.existsSync(path.join(dest, "lib", "apk", "db", "installed")))
          throw new Error(`ramroot install left no ${dest}/lib/apk/db/installed`);
      },
    },
  ];
  if (apko) {
    variants.push({
      label: "apko build-minirootfs",
      command: `XDG_CACHE_HOME=EMPTY apko build-minirootfs apko.yaml out.tar  # apko.yaml: contents.repositories [${w.repo.repository}], keyring, packages ${packages.join(" ")}`,
      before: fresh,
      run: () =>
        timeCommand(apko!, ["build-minirootfs", apkoConfig, tar], { env: { XDG_CACHE_HOME: xdg }, output: tar }),
      check: () => {
        apkoTar = tar;
      },
    });
  }
  ctx.log(`install: ${variants.map((v) => v.label).join(" vs ")}`);
  const rows = await alternate(variants, ctx.runs, ctx.log);
  if (apko) {
    const ours = "ramroot install";
    const theirs = "apko build-minirootfs";
    notes.push(
      `Round by round (the two ran one right after the other), ramroot over apko: peak RSS ${roundRatios(rows, ours, theirs, (x) => x.peakKiB)}, wall ${roundRatios(rows, ours, theirs, (x) => x.seconds)}, CPU ${roundRatios(rows, ours, theirs, (x) => x.cpuSeconds)}.`,
    );
    const listing = execFileSync("tar", ["tf", apkoTar], { encoding: "utf8", maxBuffer: 64 << 20 })
      .split("\n")
      .filter((l) => l !== "");
    const passwd = execFileSync("tar", ["xOf", apkoTar, "etc/passwd"], { encoding: "utf8" });
    notes.push(
      `Both read the same signed local repository (${w.repo.repository}) with the same key and install the same ${packages.length} packages ` +
        `(${packages.join(", ")} and their dependencies). ramroot's tree has ${ramrootPaths} paths; apko's tar ${listing.length} entries.`,
      `The work differs: apko runs no install scripts (its /etc/passwd has ${passwd.includes("ramroot:") ? "" : "no "}user \`ramroot\`, which alpine-baselayout's pre-install adds; ` +
        "its busybox links come from apko's own list), writes one tar instead of a directory, and verifies and unpacks packages in parallel goroutines. " +
        "ramroot runs every pre/post-install script and trigger chrooted (busybox --install -s, adduser) as apk does, which is what makes `apk info` and the users on the machine truthful.",
    );
  }
  notes.push(
    "Each run installs into new directories (kept until the bench ends): on ext4 without a journal, a file created within 60-360 s of many removals skips each recently freed inode with a lookup, so removing the previous run's tree first cost ramroot 3-4 s of system time that apko, writing one tar, does not pay.",
  );
  return {
    id: "install",
    title: "Install of the same package set: ramroot vs apko",
    intro: "Package install into a directory, empty caches every run.",
    tables: [
      {
        caption: "install",
        baseline: apko ? "apko build-minirootfs" : "ramroot install",
        rows,
        resourceRatios: true,
        runs: ctx.runs,
      },
    ],
    notes,
  };
}
