/**
 * `ramroot status`, `ramroot rollback` and `ramroot qemu`: the stack side, through the
 * Automation API with the same pulumi CLI, backend and passphrase as `pulumi` in this shell.
 */
import * as path from "node:path";
import { spawn } from "node:child_process";
import type { Command } from "commander";
import type { Stack, UpdateSummary } from "@pulumi/pulumi/automation";
import { inspectTarget, slotHolding, type TargetState } from "../boot/inspect";
import type { JournalEntry } from "../boot/journal";
import { parseTargetSpec, resolveTargetSpec, type TargetSpec } from "../boot/target-spec";
import { cachedImage } from "../image/build";
import { PIN_CONFIG_KEY } from "../deploy/ab-system-inputs";
import { findProjectDir } from "../project-dir";
import { heartbeat, terminalSink } from "../progress";
import { bootQemu, qemuArgs, type BootMedia } from "../qemu/boot";

const SLOTS = ["a", "b"];

export interface StackFlags {
  stack: string;
  cwd?: string;
}

/** The stack in the Pulumi project at or above --cwd (default: this directory), so paths mean the same from any directory. */
export async function openStack(flags: StackFlags): Promise<{ stack: Stack; projectDir: string }> {
  const projectDir = findProjectDir(flags.cwd ?? process.cwd());
  // Loaded on use: the Automation API brings @pulumi/pulumi and TypeScript (~750 modules, most
  // of the start-up of every other verb, `ramroot build` included).
  const { LocalWorkspace } = require("@pulumi/pulumi/automation") as typeof import("@pulumi/pulumi/automation");
  const stack = await LocalWorkspace.selectStack({ stackName: flags.stack, workDir: projectDir });
  return { stack, projectDir };
}

/** The stack's boot target, from its config (ramroot:target), with paths resolved like the program does. */
export async function stackTarget(stack: Stack, projectDir: string): Promise<TargetSpec> {
  const value = (await stack.getAllConfig())["ramroot:target"]?.value;
  if (value === undefined) throw new Error(`stack ${stack.name} has no ramroot:target in its config`);
  return resolveTargetSpec(parseTargetSpec(JSON.parse(value)), projectDir);
}

/**
 * The stack's history, oldest first, numbered. The file backend stores every entry with version
 * 0, so entries are numbered 1, 2, ... by start time, as the service backends number them.
 */
export async function numberedHistory(stack: Stack): Promise<UpdateSummary[]> {
  const history = [...(await stack.history())].sort((a, b) => new Date(a.startTime).getTime() - new Date(b.startTime).getTime());
  const unnumbered = history.every((h) => h.version === 0);
  return history.map((h, i) => (unnumbered ? { ...h, version: i + 1 } : h));
}

/** The update whose run contains the journal entry (the switch happened during it). */
function updateOf(entry: JournalEntry, history: UpdateSummary[]): UpdateSummary | undefined {
  const when = Date.parse(entry.when);
  return history.find((h) => new Date(h.startTime).getTime() <= when && when <= new Date(h.endTime ?? Date.now()).getTime() + 1000);
}

function short(id: string | undefined): string {
  return id ? id.slice(0, 12) : "-";
}

export function renderStatus(state: TargetState, history: UpdateSummary[]): string {
  const lines = [`target   ${state.description}`, `DEFAULT  ${state.defaultLabel ?? "(no syslinux config)"}${state.defaultSlot ? ` -> slot ${state.defaultSlot}` : ""}`];
  if (state.once) lines.push(`ONCE     ${state.once} (set to boot once)`);
  for (const [slot, s] of Object.entries(state.slots)) {
    if (!s?.manifest) {
      lines.push(`slot ${slot}   ${s ? "files without a ramroot manifest" : "empty"}`);
      continue;
    }
    const switched = [...state.journal].reverse().find((e) => e.planId === s.manifest!.planId && e.slot === slot);
    const by = switched ? updateOf(switched, history) : undefined;
    const packages = Object.entries(s.manifest.lockSummary ?? {}).map(([n, v]) => `${n} ${v}`).join(", ");
    lines.push(
      `slot ${slot}   image ${short(s.manifest.imageId)}  plan ${short(s.manifest.planId)}  written ${s.manifest.when}${by ? `  deployed by update ${by.version}` : ""}${s.consistent ? "" : "  (FILES CHANGED since written)"}${slot === state.defaultSlot ? "  [DEFAULT]" : ""}`,
    );
    if (packages) lines.push(`         ${packages}`);
  }
  const recent = state.journal.slice(-5);
  if (recent.length > 0) {
    lines.push("switches (newest last):");
    for (const e of recent) {
      const u = updateOf(e, history);
      lines.push(`  ${e.when}  DEFAULT ${e.label} (slot ${e.slot ?? "?"}, image ${short(e.imageId)})  ${e.how}${u ? `  update ${u.version}` : ""}`);
    }
  }
  return lines.join("\n");
}

/** What update `version` deployed: the last switch recorded before it ended. */
export function imageDeployedBy(version: number, history: UpdateSummary[], journal: JournalEntry[]): JournalEntry | undefined {
  const update = history.find((h) => h.version === version);
  if (!update) return undefined;
  const end = new Date(update.endTime ?? update.startTime).getTime() + 1000;
  return [...journal].reverse().find((e) => Date.parse(e.when) <= end);
}


export interface RollbackOptions {
  /** the update number to go back to (default: the previous successful update) */
  to?: string | number;
  log?: (message: string) => void;
  onOutput?: (out: string) => void;
}

/**
 * Goes back to the image update `to` deployed, through `pulumi up` (so it is in the history):
 * the image is found in the target's journal; if a slot holds it, DEFAULT is switched; if the
 * local cache holds it, it is written to the idle slot first; otherwise nothing runs and the
 * error says which commit to check out and rebuild.
 */
export async function rollback(stack: Stack, target: TargetSpec, opts: RollbackOptions = {}): Promise<{ version: number; planId: string; imageId?: string; inSlot?: string }> {
  const log = opts.log ?? (() => undefined);
  const history = await numberedHistory(stack);
  const updates = history.filter((h) => h.kind === "update" && h.result === "succeeded").sort((a, b) => a.version - b.version);
  const version = opts.to !== undefined ? Number(opts.to) : updates[updates.length - 2]?.version;
  if (version === undefined || !Number.isInteger(version)) {
    throw new Error(opts.to !== undefined ? `--to: "${opts.to}" is not an update number; see \`ramroot history\`` : "rollback: there is no earlier successful update to go back to");
  }
  if (!history.some((h) => h.version === version)) {
    throw new Error(`--to: no update ${version} in stack ${stack.name} (its updates are numbered 1 to ${history.length}; see \`ramroot history\`)`);
  }
  const state = await inspectTarget(target, SLOTS);
  const deployed = imageDeployedBy(version, history, state.journal);
  if (!deployed?.planId) throw new Error(`--to: update ${version} switched nothing that the journal on ${state.description} records`);
  const inSlot = slotHolding(state, deployed.planId);
  if (!inSlot && !(await cachedImage({ planId: deployed.planId }))) {
    const head = history.find((h) => h.version === version)?.environment?.["git.head"];
    throw new Error(
      `image ${short(deployed.imageId)} (plan ${short(deployed.planId)}) that update ${version} deployed is in no slot and not in the local image cache: ` +
        (head ? `check out commit ${head} and run \`pulumi up\` to rebuild it (same plan, same bytes)` : "check out the commit of that update and run `pulumi up` to rebuild it"),
    );
  }
  log(`rolling back to update ${version}: image ${short(deployed.imageId)}, ${inSlot ? `already in slot ${inSlot}: switching only` : "in the local cache: writing the idle slot, then switching"}`);
  // The pin holds until `ramroot release`: every later preview and up keeps this image.
  const previous = (await stack.getAllConfig())[PIN_CONFIG_KEY]?.value;
  await stack.setConfig(PIN_CONFIG_KEY, { value: JSON.stringify({ update: version, planId: deployed.planId, ...(deployed.imageId ? { imageId: deployed.imageId } : {}) }) });
  try {
    const result = await stack.up({ message: `ramroot rollback to update ${version} (image ${short(deployed.imageId)})`, ...(opts.onOutput ? { onOutput: opts.onOutput } : {}) });
    if (result.summary.result !== "succeeded") throw new Error(`rollback: pulumi up ended ${result.summary.result}`);
  } catch (err) {
    if (previous === undefined) await stack.removeConfig(PIN_CONFIG_KEY);
    else await stack.setConfig(PIN_CONFIG_KEY, { value: previous });
    throw err;
  }
  return { version, planId: deployed.planId, ...(deployed.imageId ? { imageId: deployed.imageId } : {}), ...(inSlot ? { inSlot } : {}) };
}

/** A verb that works on a stack of the Pulumi project in --cwd. */
function stackCommand(program: Command, name: string, description: string): Command {
  return program.command(name).description(description).option("--stack <name>", "the stack", "demo").option("--cwd <dir>", "a directory in the Pulumi project (default: this one; the project is the nearest directory with Pulumi.yaml)");
}

export function registerStackCommands(program: Command): void {
  stackCommand(program, "status", "what each slot holds, which one is DEFAULT, and which stack update put it there")
    .action(async (flags: StackFlags) => {
      const { stack, projectDir } = await openStack(flags);
      const state = await inspectTarget(await stackTarget(stack, projectDir), SLOTS);
      process.stdout.write(renderStatus(state, await numberedHistory(stack)) + "\n");
    });

  stackCommand(program, "history", "the stack's updates, numbered, with the image each one left as DEFAULT (from the target's journal)")
    .action(async (flags: StackFlags) => {
      const { stack, projectDir } = await openStack(flags);
      const history = await numberedHistory(stack);
      const state = await inspectTarget(await stackTarget(stack, projectDir), SLOTS);
      for (const h of history) {
        const deployed = h.kind === "update" && h.result === "succeeded" ? imageDeployedBy(h.version, history, state.journal) : undefined;
        const head = h.environment?.["git.head"];
        process.stdout.write(
          `${String(h.version).padStart(3)}  ${new Date(h.startTime).toISOString()}  ${h.kind.padEnd(8)} ${h.result.padEnd(9)}` +
            `${deployed ? ` DEFAULT ${deployed.label} image ${short(deployed.imageId)}` : ""}${head ? `  git ${head.slice(0, 12)}` : ""}${h.message ? `  ${h.message}` : ""}\n`,
        );
      }
    });

  stackCommand(program, "rollback", "go back to the image update N deployed (default: the previous successful update), through `pulumi up`")
    .option("--to <version>", "the update number to go back to (see `ramroot history`)")
    .action(async (flags: StackFlags & { to?: string }) => {
      const { stack, projectDir } = await openStack(flags);
      await rollback(stack, await stackTarget(stack, projectDir), {
        ...(flags.to !== undefined ? { to: flags.to } : {}),
        log: (m) => process.stderr.write(`[ramroot] ${m}\n`),
        onOutput: (o) => process.stdout.write(o),
      });
    });

  stackCommand(program, "qemu", "boot the stack's machine in QEMU (its disk image target, else its current image), or a given disk image; console on this terminal")
    .option("--disk <image>", "a disk image to boot instead of the stack's")
    .option("--expect <marker>", "exit 0 once this marker shows on the console, 1 if it does not")
    .option("--timeout <seconds>", "with --expect: give up after this long", "180")
    .action(async (flags: StackFlags & { disk?: string; expect?: string; timeout: string }) => {
      let media: BootMedia;
      if (flags.disk) media = { kind: "disk", image: path.resolve(flags.disk) };
      else {
        const { stack, projectDir } = await openStack(flags);
        const target = await stackTarget(stack, projectDir);
        if (target.kind === "image") media = { kind: "disk", image: target.path };
        else {
          // No disk to boot here: the stack's current image, kernel and initramfs directly.
          const artifacts = (await stack.outputs())["artifacts"]?.value as { kernel?: { path: string }; initramfs?: { path: string }; microcode?: { path: string } } | undefined;
          if (!artifacts?.kernel || !artifacts.initramfs) throw new Error(`qemu: stack ${stack.name} has no built image with a kernel in its outputs; run \`pulumi up\`, or give --disk`);
          media = {
            kind: "kernel",
            kernel: artifacts.kernel.path,
            initrd: [...(artifacts.microcode ? [artifacts.microcode.path] : []), artifacts.initramfs.path],
            append: "rdinit=/sbin/init",
          };
        }
      }
      if (flags.expect === undefined) {
        // Interactive: the serial console and QEMU's monitor share this terminal (Ctrl-A X quits).
        const args = qemuArgs({ media }).map((a) => (a === "stdio" ? "mon:stdio" : a)).filter((a, i, all) => !(a === "-monitor" || all[i - 1] === "-monitor"));
        process.stderr.write("[ramroot] QEMU: Ctrl-A X quits\n");
        const child = spawn("qemu-system-x86_64", args, { stdio: "inherit" });
        await new Promise<void>((resolve) => child.on("close", () => resolve()));
        return;
      }
      const sink = terminalSink();
      const waiting = process.stdout.isTTY ? undefined : heartbeat((s) => sink(`waiting for "${flags.expect}" on the console: ${s} of at most ${flags.timeout} s`, true));
      const result = await bootQemu({ media, marker: flags.expect, timeoutMs: Number(flags.timeout) * 1000, noReboot: false, onOutput: (c) => process.stdout.write(c) }).finally(() => waiting?.stop());
      if (!result.found) throw new Error(`qemu: "${flags.expect}" did not show within ${flags.timeout} s`);
      const line = result.log.split(/\r?\n/).find((l) => l.includes(flags.expect!));
      process.stderr.write(`\n[ramroot] seen: ${line?.trim()}\n`);
    });
}
