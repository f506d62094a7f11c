/**
 * `ramroot image ls|diff|extract`: what is inside an initramfs, and what differs between two.
 * An image is named by a file path, `slot:NAME` (a slot on the target given by --dir/--image/
 * --ssh, else on the stack's target), `update:N` (what stack update N deployed, from the image
 * cache or the slot holding it) or `plan:ID` (the local image cache).
 */
import * as path from "node:path";
import type { Command } from "commander";
import { inspectTarget } from "../boot/inspect";
import { DEFAULT_SLOTS, slotHolding } from "../deploy/ab-decision";
import type { TargetSpec } from "../boot/target";
import { cachedImage } from "../image/build";
import { diffImages, renderDiff, renderListing, summarizeDiff } from "../image/image-diff";
import { extractImage } from "../image/image-extract";
import { describeSource, imageBytes, readImageSource, type ImageSource } from "../deploy/image-source";
import { addTargetOptions, targetOf, type TargetFlags } from "./boot-command";
import { openStack, stackTarget } from "./stack-command";
import { deployedBy, stackHistory } from "../deploy/history";
import { RamrootError, TargetError } from "../ramroot-error";

interface ImageFlags extends TargetFlags {
  slot?: string[];
  update?: string[];
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** Resolves `slot:`/`update:`/`plan:`/file specs; the stack is opened only when one needs it. */
class SourceResolver {
  private stack?: Promise<{ target: TargetSpec; open: Awaited<ReturnType<typeof openStack>> }>;

  constructor(private readonly flags: ImageFlags) {}

  private stackSide() {
    this.stack ??= openStack({
      stack: this.flags.stack,
      ...(this.flags.cwd !== undefined ? { cwd: this.flags.cwd } : {}),
    }).then(async (open) => ({
      open,
      target: await stackTarget(open.stack, open.projectDir, this.flags.machine),
    }));
    return this.stack;
  }

  private async target(): Promise<TargetSpec> {
    const { dir, image, ssh } = this.flags;
    if (dir !== undefined || image !== undefined || ssh !== undefined) return targetOf(this.flags);
    return (await this.stackSide()).target;
  }

  async resolve(spec: string): Promise<ImageSource> {
    const [, kind, value] = /^(slot|update|plan):(.*)$/.exec(spec) ?? [];
    if (kind === "slot") return { kind: "slot", target: await this.target(), slot: value! };
    if (kind === "plan") {
      if (!/^[0-9a-f]{12,64}$/.test(value!))
        throw new RamrootError("input", `plan:${value}: expected a plan id (hex, at least 12 digits)`);
      return { kind: "plan", planId: value! };
    }
    if (kind === "update") return this.update(value!);
    return { kind: "file", path: path.resolve(spec) };
  }

  /** The image stack update N deployed: the image cache when it holds it, else the slot that does. */
  private async update(value: string): Promise<ImageSource> {
    const version = Number(value);
    if (!/^\d+$/.test(value))
      throw new RamrootError("input", `update:${value}: expected an update number (see \`ramroot history\`)`);
    const { open, target } = await this.stackSide();
    const history = await stackHistory(open.stack);
    const update = history.find((h) => h.number === version && h.kind === "update");
    if (!update)
      throw new RamrootError("input", `no update ${version} in stack ${open.stack.name} (see \`ramroot history\`)`);
    const state = await inspectTarget(target, DEFAULT_SLOTS);
    const deployed = deployedBy(update, state.journal);
    if (!deployed?.planId)
      throw new TargetError(
        `update ${version} of stack ${open.stack.name} deployed no image that the journal on ${state.description} records`,
        "name an update that wrote a slot (`ramroot history` lists them), or the slot itself (--slot)",
      );
    if (await cachedImage({ planId: deployed.planId }))
      return { kind: "plan", planId: deployed.planId, update: version };
    const slot = slotHolding(state, DEFAULT_SLOTS, deployed.planId);
    if (slot !== undefined) return { kind: "slot", target, slot };
    throw new TargetError(
      `the image update ${version} deployed (plan ${deployed.planId.slice(0, 12)}) is neither in the local image cache nor in a slot`,
      "name an update whose image is still cached or in a slot (`ramroot history` lists the updates)",
    );
  }
}

/** Positional specs first, then --slot values, then --update values. */
function sourceSpecs(positional: string[], flags: ImageFlags): string[] {
  return [
    ...positional,
    ...(flags.slot ?? []).map((s) => `slot:${s}`),
    ...(flags.update ?? []).map((u) => `update:${u}`),
  ];
}

function imageCommand(parent: Command, name: string, description: string): Command {
  return addTargetOptions(
    parent
      .command(name)
      .description(description)
      .option("--slot <name>", "a slot on the target (--dir/--image/--ssh, else the stack's); repeat for diff", collect)
      .option("--update <n>", "the image stack update N deployed (see `ramroot history`); repeat for diff", collect),
  );
}

const SOURCE_HELP = "an initramfs file, slot:NAME, update:N or plan:ID";

export function registerImageCommands(program: Command): void {
  const image = program
    .command("image")
    .description("what is inside an initramfs, and what differs between two (read back with cpio-stream)");

  imageCommand(
    image,
    "ls",
    "every path the image holds: type, mode, owner, size and sha256 (files), link target, owning package",
  )
    .argument("[source]", SOURCE_HELP)
    .option("--layers", "also list the archives (layers) the image is made of")
    .action(async (source: string | undefined, flags: ImageFlags & { layers?: boolean }) => {
      const specs = sourceSpecs(source === undefined ? [] : [source], flags);
      if (specs.length !== 1)
        throw new RamrootError(
          "input",
          `image ls: give one image (${SOURCE_HELP}, or --slot/--update); got ${specs.length}`,
        );
      const resolved = await new SourceResolver(flags).resolve(specs[0]!);
      const read = await readImageSource(resolved);
      if (flags.layers) {
        for (const l of read.layers)
          process.stdout.write(
            `layer ${l.layer}: ${l.compression} at byte ${l.offset}, ${l.entries} entries, ${l.bytes} bytes of cpio\n`,
          );
      }
      process.stdout.write(renderListing(read).join("\n") + "\n");
    });

  imageCommand(
    image,
    "diff",
    "paths added (+), removed (-) and changed (~) from one image to another, by package; package versions first",
  )
    .argument("[from]", SOURCE_HELP)
    .argument("[to]", SOURCE_HELP)
    .action(async (from: string | undefined, to: string | undefined, flags: ImageFlags) => {
      const specs = sourceSpecs(
        [from, to].filter((s): s is string => s !== undefined),
        flags,
      );
      if (specs.length !== 2)
        throw new RamrootError(
          "input",
          `image diff: give two images (${SOURCE_HELP}, or --slot/--update twice); got ${specs.length}`,
        );
      const resolver = new SourceResolver(flags);
      const a = await resolver.resolve(specs[0]!);
      const b = await resolver.resolve(specs[1]!);
      const [ra, rb] = [await readImageSource(a), await readImageSource(b)];
      const diff = diffImages(ra, rb);
      process.stdout.write(
        `--- ${describeSource(a)}\n+++ ${describeSource(b)}\n${renderDiff(diff, ra, rb).join("\n")}\n${summarizeDiff(diff)}\n`,
      );
    });

  imageCommand(
    image,
    "extract",
    "write the image's files (or the given paths) into a new directory; devices and FIFOs are listed, not made",
  )
    .argument("<source>", SOURCE_HELP)
    .argument("<dir>", "a new or empty directory")
    .argument("[paths...]", "only these paths (and what is under them)")
    .action(async (source: string, dir: string, paths: string[], flags: ImageFlags) => {
      const specs = sourceSpecs([source], flags);
      if (specs.length !== 1)
        throw new RamrootError(
          "input",
          `image extract: give one image, as the first argument (${SOURCE_HELP}); --slot and --update are for ls and diff`,
        );
      const resolved = await new SourceResolver(flags).resolve(source);
      const result = await extractImage(() => imageBytes(resolved), describeSource(resolved), path.resolve(dir), paths);
      const n = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
      process.stdout.write(
        `${describeSource(resolved)} -> ${dir}: ${n(result.files, "file", "files")}, ${n(result.dirs, "directory", "directories")}, ${n(result.symlinks, "symlink", "symlinks")}\n`,
      );
      for (const s of result.skipped) process.stdout.write(`not made: ${s}\n`);
    });
}
