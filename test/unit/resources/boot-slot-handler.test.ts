import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LEASE_DIR } from "../../../provider/boot/lease";
import { readSlot, slotEntry } from "../../../provider/boot/slot";
import { renderSyslinuxConfig } from "../../../provider/boot/schemes/syslinux/config";
import { withTarget } from "../../../provider/boot/target";
import { imageIdOf } from "../../../provider/image/build";
import { bootSlotHandler, type BootSlotInputs } from "../../../provider/resources/boot-slot-resource";
import type { OperationContext } from "../../../provider/resources/resource-handler";
import { syslinuxConfigHandler } from "../../../provider/resources/syslinux-config-resource";
import { bootPartitionDir } from "../../fixtures/boot-partition-dir";

// BootSlot's handler on a real mounted-directory target: the local copies are re-hashed against
// the image the state names before anything is sent, and a slot damaged on the target is seen by
// the next diff (no refresh needed) when there is a local copy to rewrite it from.

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

let dir: string;
let boot: string;
let logs: { message: string; severity?: string }[];
let ctx: OperationContext;
let inputs: BootSlotInputs;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-slot-handler-"));
  boot = await bootPartitionDir(path.join(dir, "boot"));
  const kernel = path.join(dir, "vmlinuz");
  const initramfs = path.join(dir, "initramfs");
  fs.writeFileSync(kernel, Buffer.alloc(70_000, 3));
  fs.writeFileSync(initramfs, Buffer.alloc(90_000, 4));
  const files = { kernel: sha(fs.readFileSync(kernel)), initramfs: sha(fs.readFileSync(initramfs)) };
  logs = [];
  ctx = { urn: "urn:test", preview: false, log: (message, severity) => logs.push({ message, severity }) };
  inputs = {
    target: { kind: "local", path: boot },
    slot: "b",
    imageId: imageIdOf({ kernel: { sha256: files.kernel }, initramfs: { sha256: files.initramfs } }),
    planId: "plan-b",
    files,
    sources: { kernel, initramfs },
  };
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test("a local copy changed after the build is refused before anything is sent", async () => {
  fs.appendFileSync(inputs.sources!.initramfs, "tampered");
  await expect(bootSlotHandler.create(inputs, ctx)).rejects.toThrow(
    new RegExp(
      `sources\\.initramfs: .*initramfs hashes to [0-9a-f]{12}, but image ${inputs.imageId.slice(0, 12)} in the stack's state has ${inputs.files.initramfs.slice(0, 12)}: the image cache changed after the build; nothing was written to slot b`,
    ),
  );
  expect(fs.existsSync(path.join(boot, "b"))).toBe(false);
});

test("hashes that match but make another image id than the state's are refused", async () => {
  const other = { ...inputs, imageId: "f".repeat(64) };
  await expect(bootSlotHandler.create(other, ctx)).rejects.toThrow(
    /imageId: the local copies make image [0-9a-f]{12}, not ffffffffffff as the stack's state says; nothing was written to slot b/,
  );
  expect(fs.existsSync(path.join(boot, "b"))).toBe(false);
});

test("a damaged idle slot shows in the next diff and the update rewrites it, giving the lease back", async () => {
  const { outs } = await bootSlotHandler.create(inputs, ctx);
  expect(outs.consistent).toBe(true);
  expect(await bootSlotHandler.diff("id", outs, inputs, ctx)).toMatchObject({ changes: {} });

  fs.writeFileSync(path.join(boot, "b", "initramfs"), "bit rot");
  // Without a local copy nothing can repair it: no change is planned (a refresh shows the damage).
  const { sources: _s, ...noSources } = inputs;
  expect((await bootSlotHandler.diff("id", outs, noSources, ctx)).changes).toEqual({});
  const diff = await bootSlotHandler.diff("id", outs, inputs, ctx);
  expect(diff.changes).toEqual({ files: "update" });
  expect(diff.replaces).toEqual([]);

  const repaired = await bootSlotHandler.update("id", outs, inputs, ctx);
  expect(repaired.consistent).toBe(true);
  expect((await withTarget(inputs.target, (t) => readSlot(t, "b")))?.consistent).toBe(true);
  expect(fs.readFileSync(path.join(boot, "b", "initramfs"))).toEqual(fs.readFileSync(inputs.sources!.initramfs));
  // A repair is followed by no switch of DEFAULT: nothing keeps the target leased.
  expect(fs.existsSync(path.join(boot, LEASE_DIR))).toBe(false);
  expect((await bootSlotHandler.diff("id", repaired, inputs, ctx)).changes).toEqual({});
});

test("a damaged slot that syslinux boots by DEFAULT is not planned for a write, with a warning that says why", async () => {
  const { outs } = await bootSlotHandler.create(inputs, ctx);
  fs.writeFileSync(
    path.join(boot, "syslinux.cfg"),
    renderSyslinuxConfig({
      defaultLabel: "b",
      timeout: 0,
      entries: [slotEntry("b", { microcode: false, append: "rdinit=/sbin/init" })],
    }),
  );
  fs.writeFileSync(path.join(boot, "b", "initramfs"), "bit rot");
  expect((await bootSlotHandler.diff("id", outs, inputs, ctx)).changes).toEqual({});
  expect(logs).toContainEqual({
    message: expect.stringMatching(
      /slot b on .* no longer holds image [0-9a-f]{12} but is not rewritten: slot "b" holds what syslinux boots by default/,
    ),
    severity: "warning",
  });
});

test("a directory with neither ldlinux.sys nor syslinux.cfg is refused at preview, saying what is there; nothing is written", async () => {
  const notBoot = path.join(dir, "media");
  fs.mkdirSync(path.join(notBoot, "lost+found"), { recursive: true });
  fs.writeFileSync(path.join(notBoot, "notes.txt"), "the data disk\n");
  const preview = { ...ctx, preview: true };
  const elsewhere = { ...inputs, target: { kind: "local" as const, path: notBoot } };
  const refusal = new RegExp(
    `target\\.path: local ${notBoot} holds neither ldlinux\\.sys nor syslinux\\.cfg .*; found there: lost\\+found, notes\\.txt; expected the directory the boot partition is mounted on`,
  );
  await expect(bootSlotHandler.create(elsewhere, preview)).rejects.toThrow(refusal);
  await expect(
    syslinuxConfigHandler.create(
      {
        target: elsewhere.target,
        strategy: "switch",
        defaultLabel: "b",
        timeout: 0,
        entries: [slotEntry("b", { microcode: false, append: "rdinit=/sbin/init" })],
      },
      preview,
    ),
  ).rejects.toThrow(refusal);
  fs.mkdirSync(path.join(dir, "empty"));
  await expect(
    bootSlotHandler.create({ ...inputs, target: { kind: "local", path: path.join(dir, "empty") } }, preview),
  ).rejects.toThrow(/found there: nothing \(the directory is empty or does not exist\)/);
  expect(fs.readdirSync(notBoot).sort()).toEqual(["lost+found", "notes.txt"]);
});
