/**
 * `node install-root.js CONFIG DEST CACHE`: what `apk add --root DEST` does for the config's
 * package set (resolve against its repositories, fetch + verify into CACHE, run the install
 * scripts, unpack, write the apk database), without overlay or packing: the work apko's
 * build-minirootfs does, for the install comparison.
 */
// First, as in ramroot's own entry points: keeps V8's young generation small.
import "../provider/young-generation";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { planImage } from "../provider/image/plan";
import { installPackages } from "../provider/apk/install";
import { packageLocator } from "../provider/apk/repository";

async function main(argv: string[]): Promise<void> {
  const [config, dest, cache] = argv;
  if (!config || !dest || !cache) throw new Error("usage: install-root CONFIG DEST CACHE");
  const resolved = await planImage(parseYaml(fs.readFileSync(config, "utf8")), {
    baseDir: path.dirname(path.resolve(config)),
  });
  const result = await installPackages({
    root: dest,
    lock: resolved.lock,
    arch: resolved.config.arch,
    keys: resolved.keys,
    repositories: resolved.config.repositories,
    cacheDir: cache,
    locate: packageLocator(resolved.repositories),
  });
  if (result.failedScripts.length > 0)
    throw new Error(`scripts failed: ${result.failedScripts.map((s) => `${s.package} ${s.script}`).join(", ")}`);
  process.stdout.write(`${result.installed.length} packages, ${result.manifest.size} paths\n`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`install-root: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
