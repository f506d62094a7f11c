/**
 * Rebuilds with the layered initramfs, for gzip and zstd at their default levels:
 * - after one overlay file changed (the package layer comes from the layer cache; only the
 *   overlay layer is packed and compressed, then the layers are concatenated and hashed);
 * - after one package was added to the world (hello-ramroot), against what that change costs
 *   at least: installing and packing that package alone, plus recompressing the layer it lands
 *   in (the package layer, decompressed beforehand).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { alternate, timeCommand, type Sample, type Variant } from "./harness";
import { cliCommand } from "./ramroot-cli";
import type { BenchContext, ResultTable, SectionResult } from "./section";
import type { Workload } from "./workload";

type Layered = "gzip" | "zstd";

function writeConfig(
  file: string,
  base: string,
  change: (c: Record<string, unknown>) => Record<string, unknown>,
): string {
  const config = parseYaml(fs.readFileSync(base, "utf8")) as Record<string, unknown>;
  fs.writeFileSync(file, toYaml(change(config)));
  return file;
}

export async function benchRebuild(w: Workload, ctx: BenchContext): Promise<SectionResult> {
  const dir = path.join(ctx.scratch, "rebuild");
  fs.mkdirSync(dir, { recursive: true });
  const tables: ResultTable[] = [];
  const notes: string[] = [];
  const setOverlay = (value: string) => fs.writeFileSync(w.changingFile, `${value}\n`);
  let revision = 0;
  try {
    for (const compression of ["gzip", "zstd"] as Layered[]) {
      const home = path.join(dir, `cache-${compression}`);
      const images = path.join(home, "images");
      const env = { RAMROOT_CACHE: home };
      const build = (config: string, ...flags: string[]) => {
        const [node, args] = cliCommand(["build", config, "--cache", images, ...flags]);
        return timeCommand(node, args, { env });
      };
      const config = w.config[compression];
      // In the project directory: the overlay and repository paths resolve as for the base config.
      const plus = writeConfig(path.join(w.projectDir, `image-${compression}-plus-hello.yaml`), config, (c) => ({
        ...c,
        packages: [...(c.packages as string[]), "hello-ramroot"],
      }));
      const alone = writeConfig(path.join(w.projectDir, `image-${compression}-hello-alone.yaml`), config, (c) => ({
        ...c,
        packages: ["hello-ramroot"],
        kernel: "none",
        overlay: undefined,
        services: undefined,
        hostname: undefined,
      }));
      setOverlay("0");
      ctx.log(`rebuild ${compression}: priming the caches (two cold builds, not timed)`);
      await build(config);
      const primed = await build(plus);
      const initramfs = /^initramfs\s+(\S+)/m.exec(primed.stdout)?.[1];
      if (!initramfs) throw new Error(`ramroot build ${plus} printed no initramfs line:\n${primed.stdout}`);
      const packageLayer = JSON.parse(fs.readFileSync(path.join(path.dirname(initramfs), "image.json"), "utf8")) as {
        layers: { key: string }[];
      };
      const rawLayer = path.join(dir, `package-layer-${compression}.cpio`);
      execFileSync("sh", [
        "-c",
        `${compression === "gzip" ? "gzip" : "zstd"} -dc < "$1" > "$2"`,
        "sh",
        path.join(images, "layers", packageLayer.layers[0]!.key, "layer.cpio"),
        rawLayer,
      ]);

      const overlayEdit: Variant = {
        label: `one overlay file changed (${compression})`,
        command: `echo N > root/etc/bench/revision; RAMROOT_CACHE=DIR ramroot build ${path.basename(config)} --cache DIR/images`,
        before: () => setOverlay(`changed-${++revision}`),
        run: () => build(config),
        check: (s) => {
          if (/from the cache/.test(s.stdout ?? ""))
            throw new Error(`${config}: the edited overlay came from the image cache`);
        },
      };
      ctx.log(`rebuild ${compression}: overlay edit, ${ctx.runs} rounds`);
      const editRows = await alternate([overlayEdit], ctx.runs, ctx.log);
      tables.push({
        caption: `one overlay file changed, ${compression} at its default level`,
        baseline: overlayEdit.label,
        rows: editRows,
        runs: ctx.runs,
      });
      setOverlay("0");

      const root = path.join(dir, "alone-root");
      const packageChange: Variant = {
        label: `hello-ramroot added (${compression}): onto the kept installed tree, pack + compress the package layer`,
        command: `RAMROOT_CACHE=DIR ramroot build ${path.basename(plus)} --cache DIR/images --force  # after a build of ${path.basename(config)}: its installed tree is kept`,
        // untimed: the kept installed tree goes back to the config's lock (hello-ramroot taken out)
        before: async () => {
          await build(config, "--force");
        },
        run: () => build(plus, "--force"),
      };
      const floor: Variant = {
        label: `hello-ramroot alone: install + pack, + recompress the package layer (${compression})`,
        command: `node bench/install-root.js ${path.basename(alone)} ROOT CACHE && node bench/pack-tree.js ROOT OUT ${compression} && node bench/compress-file.js LAYER.cpio OUT ${compression}`,
        before: () => fs.rmSync(root, { recursive: true, force: true }),
        run: async (): Promise<Sample> => {
          const node = process.execPath;
          const install = await timeCommand(node, [
            path.join(__dirname, "install-root.js"),
            alone,
            root,
            path.join(home, "apk", "packages"),
          ]);
          const pack = await timeCommand(node, [
            path.join(__dirname, "pack-tree.js"),
            root,
            path.join(dir, "alone.cpio"),
            compression,
          ]);
          const recompress = await timeCommand(node, [
            path.join(__dirname, "compress-file.js"),
            rawLayer,
            path.join(dir, "layer.out"),
            compression,
          ]);
          const parts = [install, pack, recompress];
          return {
            seconds: parts.reduce((n, p) => n + p.seconds, 0),
            cpuSeconds: parts.reduce((n, p) => n + (p.cpuSeconds ?? 0), 0),
            peakKiB: Math.max(...parts.map((p) => p.peakKiB ?? 0)),
          };
        },
      };
      ctx.log(`rebuild ${compression}: one package added, ${ctx.heavyRuns} rounds`);
      const pkgRows = await alternate([packageChange, floor], ctx.heavyRuns, ctx.log);
      tables.push({
        caption: `one package added, ${compression} at its default level`,
        baseline: floor.label,
        rows: pkgRows,
        runs: ctx.heavyRuns,
      });
      fs.rmSync(rawLayer, { force: true });
    }
  } finally {
    setOverlay("0");
  }
  notes.push(
    "The package layer holds every package (here ~384 MiB unpacked, almost all of it linux-lts's modules). A package change installs onto the installed tree the last build kept (provider/image/installed-tree.ts): only hello-ramroot is fetched, verified and unpacked, the apk database rewritten, then the whole tree is packed and the layer compressed again. Before each timed run an untimed `--force` build of the config takes the package out of the kept tree again. The floor recompresses the same layer, so the ratio shows what the build adds over the work that cannot be avoided: reading the tree to pack it, and hashing and concatenating the layers.",
  );
  return {
    id: "rebuild",
    title: "Rebuild after an overlay edit or a package change (layered initramfs)",
    intro:
      "`ramroot build` of the workload's config with warm caches. An overlay edit repacks and recompresses the overlay layer only and concatenates it after the cached package layer; " +
      "a package change builds a new package layer. The target for the overlay edit is 2 s. CPU s is the command's user + system time (GNU time): on a machine shared with other jobs it shows the work itself, where wall time also shows the waiting.",
    tables,
    notes,
  };
}
