import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import { parse as parseYaml } from "yaml";
import { parseImageConfig, planImage } from "../image/plan";
import { buildImage } from "../image/build";
import { terminalSink } from "../progress";
import { RamrootError } from "../ramroot-error";

/** Reads a build config (YAML or JSON: JSON is YAML) with the inputs of AlpineImage. */
export function readBuildConfig(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new RamrootError("input", `build: cannot read config ${file}: ${(err as Error).message}`);
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw new RamrootError("input", `build: ${file} is not valid YAML or JSON: ${(err as Error).message}`);
  }
}

interface BuildFlags {
  planOnly?: boolean;
  cache?: string;
  force?: boolean;
}

/** `ramroot build CONFIG`: the image without Pulumi. */
export function registerBuildCommands(program: Command): void {
  program
    .command("build")
    .description(
      "build an image from a YAML/JSON config (the AlpineImage inputs); prints planId, imageId and artifacts",
    )
    .argument("<config>", "the config file; relative paths in it resolve against its directory")
    .option("--plan-only", "resolve and print the plan as JSON; build nothing")
    .option("--cache <dir>", "the image cache (default ~/.cache/ramroot/images)")
    .option("--force", "build even when the cache holds this plan")
    .action(async (configFile: string, flags: BuildFlags) => {
      const baseDir = path.dirname(path.resolve(configFile));
      // The counters (packages, MiB packed) pass `transient` through: rewritten in place on a terminal.
      const progress = terminalSink();
      const resolved = await planImage(parseImageConfig(readBuildConfig(configFile)), {
        baseDir,
        onProgress: progress,
      });
      if (flags.planOnly) {
        process.stdout.write(JSON.stringify(resolved.plan, null, 2) + "\n");
        return;
      }
      const image = await buildImage(resolved, { cacheDir: flags.cache, onProgress: progress, force: flags.force });
      const lines = [
        `planId    ${image.planId}`,
        `imageId   ${image.imageId}`,
        image.kernel ? `kernel    ${image.kernel.path}  ${image.kernel.sha256}` : undefined,
        image.microcode ? `microcode ${image.microcode.path}  ${image.microcode.sha256}` : undefined,
        `initramfs ${image.initramfs.path}  ${image.initramfs.sha256}`,
        `sbom      ${image.sbom.path}`,
        image.uki ? `uki       ${image.uki.path}  ${image.uki.sha256}` : undefined,
        image.built ? undefined : "(from the cache: nothing was rebuilt)",
      ];
      process.stdout.write(lines.filter((l) => l !== undefined).join("\n") + "\n");
    });
}
