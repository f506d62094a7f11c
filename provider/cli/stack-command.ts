/**
 * `ramroot status`, `ramroot rollback` and `ramroot qemu`: the stack side, through the
 * Automation API with the same pulumi CLI, backend and passphrase as `pulumi` in this shell.
 */
import * as path from "node:path";
import { spawn } from "node:child_process";
import type { Command } from "commander";
import type { Stack } from "@pulumi/pulumi/automation";
import { inspectTarget, type TargetState } from "../boot/inspect";
import type { JournalEntry } from "../boot/journal";
import { describeFailedChecks, type HealthReport } from "../machine/health-report";
import type { TargetSpec } from "../boot/target-spec";
import { DEFAULT_SLOTS } from "../deploy/ab-decision";
import type { Pin } from "../deploy/ab-system-inputs";
import { deployedBy, stackHistory, updateOf, type StackUpdate } from "../deploy/history";
import { release, rollback, stackPin } from "../deploy/rollback";
import { stackMachine } from "../deploy/stack-machines";
import { findProjectDir } from "../project-dir";
import { stackPassphraseEnv } from "./stack-passphrase";
import { heartbeat, terminalSink } from "../progress";
import { bootQemu, qemuArgs, type BootMedia } from "../qemu/boot";
import { archInfo } from "../arch";
import { machineBootMedia } from "./machine-media";
import { FieldError, MachineError, RamrootError } from "../ramroot-error";

export interface StackFlags {
  stack: string;
  cwd?: string;
}

/**
 * The stack in the Pulumi project at or above --cwd (default: this directory), so paths mean the
 * same from any directory; with its own passphrase file when the shell names no passphrase.
 */
export async function openStack(flags: StackFlags): Promise<{ stack: Stack; projectDir: string }> {
  const projectDir = findProjectDir(flags.cwd ?? process.cwd());
  // Loaded on use: the Automation API brings @pulumi/pulumi and TypeScript (~750 modules, most
  // of the start-up of every other verb, `ramroot build` included).
  const { LocalWorkspace } = require("@pulumi/pulumi/automation") as typeof import("@pulumi/pulumi/automation");
  const envVars = stackPassphraseEnv(projectDir, flags.stack);
  const stack = await LocalWorkspace.selectStack({ stackName: flags.stack, workDir: projectDir }, { envVars });
  return { stack, projectDir };
}

/** The boot target of one machine of the stack (the named one, else its only one): see stack-machines.ts. */
export async function stackTarget(stack: Stack, projectDir: string, machine?: string): Promise<TargetSpec> {
  return (await stackMachine(stack, projectDir, machine)).target;
}

function short(id: string | undefined): string {
  return id ? id.slice(0, 12) : "-";
}

/**
 * "[DEFAULT]", or "[DEFAULT since update 3: rollback to update 1]" when DEFAULT came to the slot
 * in another update than the one that wrote it (a rollback, a switch back to an image kept there).
 */
function defaultMark(
  journal: readonly JournalEntry[],
  slot: string,
  planId: string,
  written: StackUpdate | undefined,
  history: StackUpdate[],
): string {
  const last = [...journal].reverse().find((e) => e.slot === slot && e.planId === planId);
  const by = last ? updateOf(last, history) : undefined;
  const rollback = last?.how === "rollback" && last.update !== undefined ? `rollback to update ${last.update}` : "";
  if (!by || (by.number === written?.number && !rollback)) return "[DEFAULT]";
  return `[DEFAULT since update ${by.number}${rollback ? `: ${rollback}` : ""}]`;
}

/** A health report's checks on one line: "sshd ok, data failed (exit 1)". */
function checkSummary(report: HealthReport): string {
  return report.checks.length === 0 ? "no checks" : report.checks.map((c) => `${c.name} ${c.result}`).join(", ");
}

/** The failed checks' output under a status line, indented. */
function failedCheckLines(report: HealthReport): string[] {
  return report.checks.some((c) => !c.ok) ? describeFailedChecks(report).replace(/^/gm, "         ").split("\n") : [];
}

/** What the running machine says (an ssh target), and the report a failed trial left on the boot partition. */
function machineLines(state: TargetState): string[] {
  const lines: string[] = [];
  const m = state.machine;
  if (m) {
    const runs = `machine  runs ${m.slot ? `slot ${m.slot}` : "an unknown slot"}, image ${short(m.imageId)}${m.uptimeSeconds !== undefined ? `, up ${m.uptimeSeconds} s` : ""}`;
    if (!m.guarded) lines.push(`${runs}; no health checks in this image`);
    else if (!m.health) lines.push(`${runs}; health: no report yet (its guard has not run)`);
    else if (m.health.imageId !== m.imageId)
      lines.push(`${runs}; health: the report is for another image (${short(m.health.imageId)})`);
    else {
      lines.push(`${runs}; health ${m.health.status} (${checkSummary(m.health)})`);
      lines.push(...failedCheckLines(m.health));
    }
  }
  const t = state.trialReport;
  if (t && t.status !== "healthy") {
    lines.push(
      `TRIAL    image ${short(t.imageId)} failed its last trial: ${t.status}${t.uptimeSeconds !== undefined ? ` at ${t.uptimeSeconds} s after boot` : ""} (${checkSummary(t)}; the report its guard left on the boot partition)`,
    );
    lines.push(...failedCheckLines(t));
  }
  return lines;
}

export function renderStatus(state: TargetState, history: StackUpdate[], pin?: Pin, name?: string): string {
  const lines = [
    ...(name !== undefined ? [`name     ${name}`] : []),
    `target   ${state.description}`,
    `DEFAULT  ${state.defaultLabel ?? "(no syslinux config)"}${state.defaultSlot ? ` -> slot ${state.defaultSlot}` : ""}`,
  ];
  if (pin)
    lines.push(
      `PINNED   to update ${pin.update} (image ${short(pin.imageId ?? pin.planId)}) by \`ramroot rollback\`; \`ramroot release${name !== undefined ? ` ${name}` : ""}\` lets the config's image deploy again`,
    );
  if (state.once) lines.push(`ONCE     ${state.once} (set to boot once)`);
  for (const [slot, s] of Object.entries(state.slots)) {
    if (!s?.manifest) {
      lines.push(`slot ${slot}   ${s ? "files without a ramroot manifest" : "empty"}`);
      continue;
    }
    // Which update wrote the slot: the one running when its manifest was written. A rollback
    // that only switched DEFAULT wrote nothing, so it is named on the DEFAULT mark instead.
    const written = updateOf(s.manifest, history);
    const packages = Object.entries(s.manifest.lockSummary ?? {})
      .map(([n, v]) => `${n} ${v}`)
      .join(", ");
    lines.push(
      `slot ${slot}   image ${short(s.manifest.imageId)}  plan ${short(s.manifest.planId)}  written ${s.manifest.when}${written ? ` by update ${written.number}` : ""}${s.consistent ? "" : "  (FILES CHANGED since written)"}${slot === state.defaultSlot ? `  ${defaultMark(state.journal, slot, s.manifest.planId, written, history)}` : ""}`,
    );
    if (packages) lines.push(`         ${packages}`);
  }
  lines.push(...machineLines(state));
  const failed = state.failedTrials.slice(-5);
  if (failed.length > 0) {
    lines.push("failed trials (newest last; DEFAULT stayed each time):");
    for (const t of failed)
      lines.push(
        `  ${t.when}  slot ${t.slot}  image ${short(t.imageId)}  ${t.cause} after ${t.seconds} s: ${t.detail.split("\n")[0]}`,
      );
  }
  const recent = state.journal.slice(-5);
  if (recent.length > 0) {
    lines.push("switches (newest last):");
    for (const e of recent) {
      const u = updateOf(e, history);
      const how = e.how === "rollback" && e.update !== undefined ? `rollback to update ${e.update}` : e.how;
      lines.push(
        `  ${e.when}  DEFAULT ${e.label} (slot ${e.slot ?? "?"}, image ${short(e.imageId)})  ${how}${u ? `  update ${u.number}` : ""}`,
      );
    }
  }
  return lines.join("\n");
}

/** One line of `ramroot history`; what is not an update has no number. */
function historyLine(h: StackUpdate, deployed: JournalEntry | undefined): string {
  return (
    `${(h.number === undefined ? "-" : String(h.number)).padStart(4)}  ${h.startTime}  ${h.kind.padEnd(8)} ${h.result.padEnd(9)}` +
    `${deployed ? ` DEFAULT ${deployed.label} image ${short(deployed.imageId)}` : ""}${h.commit ? `  git ${h.commit.slice(0, 12)}${h.commit.endsWith("+dirty") ? "+dirty" : ""}` : ""}${h.message ? `  ${h.message}` : ""}`
  );
}

function releaseMessage(machine: string, pin: Pin | undefined): string {
  return pin
    ? `[ramroot] released ${machine}'s pin to update ${pin.update} (image ${short(pin.imageId ?? pin.planId)}); \`pulumi preview\` shows the way back to the config's image, \`pulumi up\` deploys it`
    : `[ramroot] ${machine} is not pinned; nothing to release`;
}

/**
 * Removes the named machine's pin (else the stack's only machine's) and says what it was. A name
 * is taken as given: the pin of a machine the program no longer declares can still be released.
 */
async function releaseVerb(machine: string | undefined, flags: StackFlags): Promise<void> {
  const { stack, projectDir } = await openStack(flags);
  const name = machine ?? (await stackMachine(stack, projectDir)).name;
  process.stderr.write(releaseMessage(name, await release(stack, name)) + "\n");
}

/** A verb that works on one machine of a stack of the Pulumi project in --cwd. */
function stackCommand(program: Command, name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .argument(
      "[machine]",
      "the machine: its AbSystem's name in the program (default: the stack's only one; `machine` in the stack's own program)",
    )
    .option("--stack <name>", "the stack", "demo")
    .option(
      "--cwd <dir>",
      "a directory in the Pulumi project (default: this one; the project is the nearest directory with Pulumi.yaml)",
    );
}

export function registerStackCommands(program: Command): void {
  stackCommand(
    program,
    "status",
    "what each slot holds, which stack update wrote it, which one is DEFAULT (and since which update), and the pin",
  ).action(async (machine: string | undefined, flags: StackFlags) => {
    const { stack, projectDir } = await openStack(flags);
    const { name, target } = await stackMachine(stack, projectDir, machine);
    const state = await inspectTarget(target, [...DEFAULT_SLOTS], { machine: true });
    process.stdout.write(renderStatus(state, await stackHistory(stack), await stackPin(stack, name), name) + "\n");
  });

  stackCommand(
    program,
    "history",
    "the stack's updates, numbered (numbers never change), with the image each one left as DEFAULT (from the target's journal)",
  )
    .option("--json", "print the list as JSON, for scripts")
    .action(async (machine: string | undefined, flags: StackFlags & { json?: boolean }) => {
      const { stack, projectDir } = await openStack(flags);
      const history = await stackHistory(stack);
      const state = await inspectTarget(await stackTarget(stack, projectDir, machine), [...DEFAULT_SLOTS]);
      const rows = history.map((h) => ({
        ...h,
        deployed: h.kind === "update" && h.result === "succeeded" ? deployedBy(h, state.journal) : undefined,
      }));
      if (flags.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
        return;
      }
      for (const row of rows) process.stdout.write(historyLine(row, row.deployed) + "\n");
    });

  stackCommand(
    program,
    "rollback",
    "go back to the image update N left running (default: the newest earlier update that left another image running), through `pulumi up`; the stack stays pinned to it until `ramroot release`",
  )
    .option("--to <update>", "the update number to go back to (see `ramroot history`)")
    .option("--release", "remove the pin instead (the same as `ramroot release`)")
    .action(async (machine: string | undefined, flags: StackFlags & { to?: string; release?: boolean }) => {
      if (flags.release) return releaseVerb(machine, flags);
      if (flags.to !== undefined && !/^\d+$/.test(flags.to))
        throw new FieldError(
          "--to",
          `got ${JSON.stringify(flags.to)}; expected an update number (see \`ramroot history\`)`,
        );
      const { stack, projectDir } = await openStack(flags);
      const { name, target } = await stackMachine(stack, projectDir, machine);
      await rollback(stack, target, {
        machine: name,
        ...(flags.to !== undefined ? { to: Number(flags.to) } : {}),
        log: (m) => process.stderr.write(`[ramroot] ${m}\n`),
        onOutput: (o) => process.stdout.write(o),
      });
    });

  stackCommand(
    program,
    "release",
    "remove the pin a rollback wrote to the stack config: the next `pulumi preview` shows the way back to the config's image",
  ).action(releaseVerb);

  stackCommand(
    program,
    "qemu",
    "boot the stack's machine in QEMU (its disk image target, else its current image), or a given disk image; console on this terminal",
  )
    .option("--disk <image>", "a disk image to boot instead of the stack's")
    .option("--expect <marker>", "exit 0 once this marker shows on the console, 1 if it does not")
    .option("--timeout <seconds>", "with --expect: give up after this long", "180")
    .action(
      async (machine: string | undefined, flags: StackFlags & { disk?: string; expect?: string; timeout: string }) => {
        let media: BootMedia;
        if (flags.disk) media = { kind: "disk", image: path.resolve(flags.disk) };
        else {
          const { stack, projectDir } = await openStack(flags);
          media = await machineBootMedia(stack, projectDir, machine);
        }
        if (flags.expect === undefined) {
          // Interactive: the serial console and QEMU's monitor share this terminal (Ctrl-A X quits).
          const args = qemuArgs({ media })
            .map((a) => (a === "stdio" ? "mon:stdio" : a))
            .filter((a, i, all) => !(a === "-monitor" || all[i - 1] === "-monitor"));
          process.stderr.write("[ramroot] QEMU: Ctrl-A X quits\n");
          // The stack's machines boot x86_64 through syslinux (a UEFI scheme is to come).
          const child = spawn(archInfo("x86_64").qemu.binary, args, { stdio: "inherit" });
          await new Promise<void>((resolve) => child.on("close", () => resolve()));
          return;
        }
        const sink = terminalSink();
        const waiting = process.stdout.isTTY
          ? undefined
          : heartbeat((s) =>
              sink(`waiting for "${flags.expect}" on the console: ${s} of at most ${flags.timeout} s`, true),
            );
        const result = await bootQemu({
          media,
          marker: flags.expect,
          timeoutMs: Number(flags.timeout) * 1000,
          noReboot: false,
          onOutput: (c) => process.stdout.write(c),
        }).finally(() => waiting?.stop());
        if (!result.found) throw new MachineError(`qemu: "${flags.expect}" did not show within ${flags.timeout} s`);
        const line = result.log.split(/\r?\n/).find((l) => l.includes(flags.expect!));
        process.stderr.write(`\n[ramroot] seen: ${line?.trim()}\n`);
      },
    );
}
