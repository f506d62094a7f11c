import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execa } from "execa";
import { inspectTarget } from "../../provider/boot/inspect";
import type { TargetSpec } from "../../provider/boot/target-spec";
import { sshTarget, startSshd, type TestSshd } from "../boot/sshd";
import { bootPartitionDir } from "../fixtures/boot-partition-dir";
import { ramrootArgv } from "../fixtures/debian-repo";
import { buildImageRepo, stackImageConfig, type ImageRepo } from "../fixtures/image-repo";
import { step } from "../fixtures/scenario-step";
import { machineStack, type EngineStack } from "./pulumi-harness";

// One A/B rule for preview, `up` and the CLI (issue #22), over ssh to a "machine" whose
// /proc/cmdline the test sets (sshd in a mount namespace of its own with a file bound over it),
// so the slot it runs is known as on a real box. With `strategy: switch` and no reboot between
// two deploys, the second writes the DEFAULT slot the machine never booted (not the running one,
// and without refusing). At every step the slots the preview says `up` writes are the slots `up`
// writes. (The rule's whole table is test/unit/deploy/ab-decision.test.ts.)
jest.setTimeout(3_600_000);

let env: EngineStack;
let repo: ImageRepo;
let sshd: TestSshd;
let boot: string;
let cmdline: string;
let target: TargetSpec;

/** What the machine booted: BOOT_IMAGE as syslinux puts it on the command line. */
function bootedFrom(slot: string | undefined): void {
  // Rewritten in place: the file bound over /proc/cmdline stays the same file.
  fs.writeFileSync(cmdline, `${slot ? `BOOT_IMAGE=/${slot}/vmlinuz ` : ""}rdinit=/sbin/init console=ttyS0\n`);
}

async function configure(message: string): Promise<void> {
  const overlay = path.join(env.dir, "root");
  fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
  fs.writeFileSync(path.join(overlay, "etc", "ramroot", "message"), `${message}\n`);
  await env.stack.setAllConfig({
    "ramroot:target": { value: JSON.stringify(target), secret: true },
    "ramroot:image": stackImageConfig(repo, overlay),
  });
}

/** The slots whose BootSlot the preview creates, updates or replaces. */
function previewWrites(stdout: string): string[] {
  const slots = new Set<string>();
  const lines = stdout.split("\n");
  for (const [i, line] of lines.entries()) {
    if (!/ramroot:index:BootSlot: \((create|update|replace|create-replacement)\)/.test(line)) continue;
    const urn = lines.slice(i + 1, i + 4).find((l) => l.includes("[urn="));
    const slot = /machine-slot-([a-z0-9_-]+)\]/.exec(urn ?? "")?.[1];
    if (slot) slots.add(slot);
  }
  return [...slots].sort();
}

/** The boot directory as it is, read here rather than over ssh (every ssh command is a round trip). */
const onDisk = () => inspectTarget({ kind: "local", path: boot }, ["a", "b"]);

/** When each slot was written (its manifest), to see which ones an update wrote. */
async function written(): Promise<Record<string, string | undefined>> {
  const state = await onDisk();
  return { a: state.slots.a?.manifest?.when, b: state.slots.b?.manifest?.when };
}

/** Previews, then ups: the slots the preview names are the slots the update writes. */
async function deploy(message: string): Promise<{ wrote: string[]; defaultSlot: string | undefined }> {
  await configure(message);
  const preview = await env.stack.preview({ diff: true });
  const before = await written();
  const up = await env.stack.up();
  expect(up.summary.result).toBe("succeeded");
  const after = await written();
  const wrote = (["a", "b"] as const).filter((s) => after[s] !== before[s]);
  expect(previewWrites(preview.stdout)).toEqual(wrote);
  return { wrote, defaultSlot: (await onDisk()).defaultSlot };
}

/** `npx ramroot ARGS` on the stack (no target flags: the stack's target). */
async function ramroot(...args: string[]): Promise<string> {
  const run = await execa(process.execPath, ramrootArgv(...args, "--stack", "machine", "--cwd", env.dir), {
    env: { PULUMI_BACKEND_URL: `file://${path.join(env.dir, "state")}`, PULUMI_CONFIG_PASSPHRASE: "test" },
    reject: false,
  });
  if (run.exitCode !== 0) throw new Error(`ramroot ${args.join(" ")} failed (${run.exitCode}): ${run.stderr}`);
  return run.stdout;
}

beforeAll(async () => {
  env = await machineStack("machine");
  process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
  repo = await buildImageRepo(path.join(env.dir, "repo"));
  cmdline = path.join(env.dir, "cmdline");
  bootedFrom(undefined);
  sshd = await startSshd({ cmdline });
  boot = await bootPartitionDir(fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-ab-rule-boot-")));
  target = sshTarget(sshd, boot);
});
afterAll(async () => {
  await sshd?.stop();
  await env?.cleanup();
  if (boot) fs.rmSync(boot, { recursive: true, force: true });
  delete process.env.RAMROOT_IMAGE_CACHE;
});

test("switch over ssh without a reboot: the never-booted DEFAULT is rewritten, never the running slot; the preview says what up writes", async () => {
  await step("first deploy (the running slot is not known): slot a, DEFAULT a", async () => {
    expect(await deploy("one")).toEqual({ wrote: ["a"], defaultSlot: "a" });
  });

  await step("the machine booted a; a new image goes to b, DEFAULT b (no reboot after)", async () => {
    bootedFrom("a");
    expect(await deploy("two")).toEqual({ wrote: ["b"], defaultSlot: "b" });
  });

  const aBefore = (await written()).a;
  await step("still running a: the next image rewrites b (DEFAULT, never booted), not a; DEFAULT stays b", async () => {
    expect(await deploy("three")).toEqual({ wrote: ["b"], defaultSlot: "b" });
    expect((await written()).a).toBe(aBefore);
    // While b was rewritten, DEFAULT booted the running slot a; the journal says both switches.
    const journal = (await onDisk()).journal.slice(-2);
    expect(journal.map((e) => [e.how, e.slot])).toEqual([
      ["back to the running slot", "a"],
      ["switch", "b"],
    ]);
  });

  await step(
    "the CLI reads the stack's target when no target flag is given, and refuses the running slot",
    async () => {
      const slotB = JSON.parse(await ramroot("slot", "show", "--slot", "b")) as { manifest?: { imageId: string } };
      expect(slotB.manifest?.imageId).toBe((await env.stack.outputs()).imageId?.value);
      const shown = JSON.parse(await ramroot("syslinux", "show")) as { config: { defaultLabel: string } };
      expect(shown.config.defaultLabel).toBe("b");
      const kernel = path.join(env.dir, "k");
      fs.writeFileSync(kernel, "kernel");
      await expect(ramroot("slot", "write", "--slot", "a", "--kernel", kernel, "--initramfs", kernel)).rejects.toThrow(
        /refusing to write: slot "a" is the one the machine is running/,
      );
    },
  );
});
