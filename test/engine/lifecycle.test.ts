import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { createDisk } from "../../provider/boot/disk-create";
import { slotEntry } from "../../provider/boot/slot";
import type { TargetSpec } from "../../provider/boot/target";
import { bootQemu, logTail } from "../../provider/qemu/boot";
import { BootSlot, SyslinuxConfig } from "../../components/resources";
import { makeBusyboxInitramfs, markerInit } from "../fixtures/busybox-initramfs";
import { debianKernel } from "../fixtures/debian-kernel";
import { sshTarget, startSshd, type TestSshd } from "../boot/sshd";
import { step } from "../fixtures/scenario-step";
import { engineStack, type EngineStack } from "./pulumi-harness";
import { expectNoKey, exportAsUser, stateText } from "./ssh-stack";
import { bootPartitionDir } from "../fixtures/boot-partition-dir";

// Lifecycle safety with the real pulumi CLI (file backend) driving the real provider plugin, on
// a disk image target and on an ssh target (a real sshd on loopback): a connection-only change
// is an update that writes nothing, an identity change removes nothing, destroy leaves a
// partition that boots its DEFAULT, and the ssh key never reaches the state.
jest.setTimeout(900_000);

const APPEND = "rdinit=/sbin/init console=ttyS0 no_timer_check panic=5 quiet";
const sha = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

interface SlotImage {
  kernel: string;
  initramfs: string;
  files: { kernel: string; initramfs: string };
}

let work: string;
let images: Record<"a" | "b", SlotImage>;
let sshd: TestSshd;
let secondKey: string;

/** The program: slots a and b hold their images, syslinux boots a; everything on `target`. */
function lowLevelProgram(state: { target: TargetSpec; secretAppend?: string }) {
  return async () => {
    const slots = (["a", "b"] as const).map(
      (slot) =>
        new BootSlot(`slot-${slot}`, {
          target: state.target,
          slot,
          imageId: `image-${slot}`,
          planId: `plan-${slot}`,
          files: images[slot].files,
          sources: { kernel: images[slot].kernel, initramfs: images[slot].initramfs },
        }),
    );
    const config = new SyslinuxConfig(
      "boot",
      {
        target: state.target,
        defaultLabel: "a",
        timeout: 0,
        entries: ["a", "b"].map((slot) => {
          const entry = slotEntry(slot, { microcode: false, append: APPEND, menuLabel: `slot ${slot}` });
          // A command line carrying a token, given as a Pulumi secret, stays one in the state.
          return state.secretAppend ? { ...entry, append: pulumi.secret(`${APPEND} ${state.secretAppend}`) } : entry;
        }),
      },
      { dependsOn: slots },
    );
    return { default: config.activeDefault };
  };
}

/** Every file under a directory: relative path -> sha256 and mtime (a rewrite changes the mtime). */
function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else out[child] = `${sha(fs.readFileSync(path.join(dir, child)))} ${fs.statSync(path.join(dir, child)).mtimeMs}`;
    }
  };
  walk("");
  return out;
}

/** A disk image: its bytes and its mtime. */
function snapshotImage(file: string): string {
  return `${sha(fs.readFileSync(file))} ${fs.statSync(file).mtimeMs}`;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-lifecycle-"));
  const kernel = debianKernel();
  images = {} as typeof images;
  for (const slot of ["a", "b"] as const) {
    const initramfs = makeBusyboxInitramfs({
      init: markerInit(`LIFECYCLE-SLOT-${slot.toUpperCase()}`),
      output: path.join(work, `initramfs-${slot}.gz`),
    });
    images[slot] = {
      kernel: kernel.vmlinuz,
      initramfs,
      files: { kernel: sha(fs.readFileSync(kernel.vmlinuz)), initramfs: sha(fs.readFileSync(initramfs)) },
    };
  }
  sshd = await startSshd();
  // A second user key the machine also accepts: rotating to it is a connection change.
  const keyFile = path.join(sshd.dir, "second_key");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ramroot-second", "-f", keyFile]);
  fs.appendFileSync(path.join(sshd.dir, "authorized_keys"), fs.readFileSync(`${keyFile}.pub`));
  secondKey = fs.readFileSync(keyFile, "utf8");
});
afterAll(async () => {
  await sshd?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe("disk image target", () => {
  let env: EngineStack;
  let disk: string;
  let moved: string;
  let copy: string;
  const state: { target: TargetSpec } = { target: { kind: "image", path: "" } };

  beforeAll(async () => {
    env = await engineStack("lifecycle-image", lowLevelProgram(state));
    disk = path.join(env.dir, "disk.img");
    moved = path.join(env.dir, "other.img");
    copy = path.join(env.dir, "copy.img");
    await createDisk({ output: disk, sizeMiB: 48, layout: "mbr", slots: ["a", "b"] });
    await createDisk({ output: moved, sizeMiB: 48, layout: "mbr", slots: ["a", "b"] });
    state.target = { kind: "image", path: disk };
  });
  afterAll(async () => env?.cleanup());

  async function upWritesBothSlots(): Promise<void> {
    const up = await env.stack.up();
    expect(up.summary.result).toBe("succeeded");
    expect(up.outputs.default?.value).toBe("a");
  }

  async function anotherSpellingIsAnUpdate(): Promise<void> {
    const before = snapshotImage(disk);
    state.target = { kind: "image", path: path.join(env.dir, ".", "sub", "..", "disk.img"), partition: 1 };
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.update).toBe(3);
    expect(preview.changeSummary.replace ?? 0).toBe(0);
    expect(preview.changeSummary.delete ?? 0).toBe(0);
    expect(preview.stdout).toMatch(/\+ partition\s*: 1/);
    const up = await env.stack.up();
    expect(up.summary.resourceChanges?.update).toBe(3);
    expect(up.summary.resourceChanges?.delete ?? 0).toBe(0);
    expect(snapshotImage(disk)).toBe(before);
    const again = await env.stack.preview();
    expect(again.changeSummary.update ?? 0).toBe(0);
  }

  async function aByteCopyIsTheSamePartition(): Promise<void> {
    // A byte copy is the same FAT volume (serial and label), as the stick written from the image
    // is: an update that writes nothing to it, however differently the path reads.
    fs.copyFileSync(disk, copy);
    const before = { disk: snapshotImage(disk), copy: snapshotImage(copy) };
    state.target = { kind: "image", path: copy };
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.update).toBe(3);
    expect(preview.changeSummary.replace ?? 0).toBe(0);
    const up = await env.stack.up();
    expect(up.summary.resourceChanges?.update).toBe(3);
    expect(up.summary.resourceChanges?.delete ?? 0).toBe(0);
    expect({ disk: snapshotImage(disk), copy: snapshotImage(copy) }).toEqual(before);
  }

  async function anotherDiskIsAReplacement(): Promise<void> {
    const before = snapshotImage(copy);
    state.target = { kind: "image", path: moved };
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.replace).toBe(3);
    const up = await env.stack.up();
    expect(up.summary.result).toBe("succeeded");
    expect(up.stdout).toMatch(/left slot a on image:.*copy\.img#?.* in place/);
    expect(snapshotImage(copy)).toBe(before);
  }

  async function destroyLetsGo(): Promise<void> {
    const before = snapshotImage(moved);
    const destroy = await env.stack.destroy();
    expect(destroy.summary.resourceChanges?.delete).toBe(4); // the three and the stack
    expect(destroy.stdout).toMatch(/left syslinux\.cfg on image:.* in place/);
    expect(snapshotImage(moved)).toBe(before);
    const copy = path.join(env.dir, "boot-copy.img");
    fs.copyFileSync(moved, copy);
    const result = await bootQemu({
      media: { kind: "disk", image: copy },
      marker: "LIFECYCLE-SLOT-A",
      timeoutMs: 300_000,
    });
    if (!result.found) throw new Error(`the destroyed stack's disk did not boot DEFAULT:\n${logTail(result.log, 30)}`);
    expect(result.log).not.toContain("LIFECYCLE-SLOT-B");
  }

  // One scenario: each step changes the stack the next one starts from.
  test("a disk image's life: up, another spelling of the same partition, a byte copy, another disk, destroy", async () => {
    await step("up writes both slots and the config", upWritesBothSlots);
    await step(
      "naming the auto-detected partition and another spelling of the path: an update, and the disk stays byte-identical",
      anotherSpellingIsAnUpdate,
    );
    await step(
      "a byte copy of the disk is the same partition (its FAT volume): an update that writes nothing",
      aByteCopyIsTheSamePartition,
    );
    await step(
      "another disk is another partition: a replacement that writes the new disk and removes nothing from the old",
      anotherDiskIsAReplacement,
    );
    await step("destroy lets go: the disk still boots its DEFAULT slot in QEMU", destroyLetsGo);
  });
});

describe("ssh target (sshd on loopback)", () => {
  let env: EngineStack;
  let root: string;
  let movedRoot: string;
  const token = "ramroot.token=SECRET-APPEND-7f3a9c";
  const state: { target: TargetSpec; secretAppend?: string } = {
    target: { kind: "local", path: "" },
    secretAppend: token,
  };

  beforeAll(async () => {
    env = await engineStack("lifecycle-ssh", lowLevelProgram(state));
    root = await bootPartitionDir(path.join(env.dir, "boot"));
    movedRoot = await bootPartitionDir(path.join(env.dir, "boot2"));
    // The program passes the key as a plain string: the provider makes it a secret anyway.
    state.target = sshTarget(sshd, root);
  });
  afterAll(async () => env?.cleanup());

  async function notABootPartitionIsRefused(): Promise<void> {
    const media = path.join(env.dir, "media");
    fs.mkdirSync(path.join(media, "lost+found"), { recursive: true });
    fs.writeFileSync(path.join(media, "README"), "the data disk\n");
    const target = state.target;
    state.target = sshTarget(sshd, media);
    const refused = await env.stack.preview().then(
      () => "previewed",
      (err: Error) => err.message,
    );
    expect(refused).toMatch(
      new RegExp(
        `target\\.path: ssh .*:${media} holds neither ldlinux\\.sys nor syslinux\\.cfg .*found there: README, lost\\+found`,
      ),
    );
    expect(fs.readdirSync(media).sort()).toEqual(["README", "lost+found"]);
    state.target = target;
  }

  async function upOverSshKeepsTheKeySecret(): Promise<void> {
    const up = await env.stack.up();
    expect(up.summary.result).toBe("succeeded");
    expect(fs.existsSync(path.join(root, "syslinux.cfg"))).toBe(true);
    expectNoKey(stateText(env), sshd.userKey);
    const exported = await exportAsUser(env);
    expect(exported).toContain("ramroot:index:BootSlot");
    expectNoKey(exported, sshd.userKey);
    expectNoKey(up.stdout + up.stderr, sshd.userKey);
    // The secret append is on the machine (syslinux needs it) and nowhere in the state.
    expect(fs.readFileSync(path.join(root, "syslinux.cfg"), "utf8")).toContain(token);
    expect(stateText(env)).not.toContain(token);
    expect(exported).not.toContain(token);
    const slot = JSON.parse(exported).deployment.resources.find(
      (r: { type: string }) => r.type === "ramroot:index:BootSlot",
    );
    expect(JSON.stringify(slot.inputs.target.privateKey)).toMatch(/ciphertext/);
    expect(JSON.stringify(slot.outputs.target.privateKey)).toMatch(/ciphertext/);
  }

  async function connectionChangeIsAnUpdate(): Promise<void> {
    const before = snapshotDir(root);
    const knownHosts = path.join(env.dir, "known_hosts_copy");
    fs.copyFileSync(sshd.knownHosts, knownHosts);
    state.target = {
      kind: "ssh",
      host: "127.0.0.1",
      port: sshd.port,
      user: "root",
      path: `${root}/`,
      privateKey: secondKey,
      knownHostsFile: knownHosts,
      strictHostKeyChecking: true,
    };
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.update).toBe(3);
    expect(preview.changeSummary.replace ?? 0).toBe(0);
    const up = await env.stack.up();
    expect(up.summary.resourceChanges?.update).toBe(3);
    expect(snapshotDir(root)).toEqual(before);
    expectNoKey(stateText(env), secondKey);
    expectNoKey(stateText(env), sshd.userKey);
  }

  async function anotherDirectoryIsAReplacement(): Promise<void> {
    const before = snapshotDir(root);
    state.target = { ...state.target, path: movedRoot } as TargetSpec;
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.replace).toBe(3);
    const up = await env.stack.up();
    expect(up.summary.result).toBe("succeeded");
    expect(snapshotDir(root)).toEqual(before);
    expect(fs.existsSync(path.join(movedRoot, "a", "initramfs"))).toBe(true);
  }

  async function destroyLeavesEverything(): Promise<void> {
    const before = snapshotDir(movedRoot);
    const destroy = await env.stack.destroy();
    expect(destroy.summary.resourceChanges?.delete).toBe(4); // the three and the stack
    expect(snapshotDir(movedRoot)).toEqual(before);
  }

  // One scenario: each step changes the stack the next one starts from.
  test("an ssh target's life: not a boot partition, up, a connection change, another directory, destroy", async () => {
    await step(
      "a directory on the machine that is no boot partition is refused at preview, naming what is there",
      notABootPartitionIsRefused,
    );
    await step("up over ssh: the private key is in no state file, no export and no output", upOverSshKeepsTheKeySecret);
    await step(
      "a new key, known_hosts file, explicit host key checking and a trailing slash: an update that touches no file",
      connectionChangeIsAnUpdate,
    );
    await step(
      "another directory on the machine is another identity: the old one keeps every file",
      anotherDirectoryIsAReplacement,
    );
    await step("destroy leaves the config and both slots", destroyLeavesEverything);
  });
});
