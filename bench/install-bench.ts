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
import { alternate, timeCommand, type Variant } from "./harness";
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
  const dest = path.join(dir, "root");
  const cache = path.join(dir, "cache");
  const tar = path.join(dir, "apko.tar");
  const xdg = path.join(dir, "xdg-cache");
  const fresh = () => {
    for (const p of [dest, cache, tar, xdg]) fs.rmSync(p, { recursive: true, force: true });
  };
  let ramrootPaths = 0;
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
    });
  }
  ctx.log(`install: ${variants.map((v) => v.label).join(" vs ")}`);
  const rows = await alternate(variants, ctx.runs, ctx.log);
  if (apko) {
    const listing = execFileSync("tar", ["tf", tar], { encoding: "utf8", maxBuffer: 64 << 20 })
      .split("\n")
      .filter((l) => l !== "");
    const passwd = execFileSync("tar", ["xOf", tar, "etc/passwd"], { encoding: "utf8" });
    notes.push(
      `Both read the same signed local repository (${w.repo.repository}) with the same key and install the same ${packages.length} packages ` +
        `(${packages.join(", ")} and their dependencies). ramroot's tree has ${ramrootPaths} paths; apko's tar ${listing.length} entries.`,
      `The work differs: apko runs no install scripts (its /etc/passwd has ${passwd.includes("ramroot:") ? "" : "no "}user \`ramroot\`, which alpine-baselayout's pre-install adds; ` +
        "its busybox links come from apko's own list), writes one tar instead of a directory, and verifies and unpacks packages in parallel goroutines. " +
        "ramroot runs every pre/post-install script and trigger chrooted (busybox --install -s, adduser) as apk does, which is what makes `apk info` and the users on the machine truthful.",
    );
  }
  return {
    id: "install",
    title: "Install of the same package set: ramroot vs apko",
    intro: "Package install into a directory, empty caches every run.",
    tables: [
      { caption: "install", baseline: apko ? "apko build-minirootfs" : "ramroot install", rows, runs: ctx.runs },
    ],
    notes,
  };
}
