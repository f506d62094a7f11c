import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bootQemu, logTail } from "../../provider/qemu/boot";
import { readBootOnce, setBootOnce } from "../../provider/boot/schemes/syslinux/once";
import { promote } from "../../provider/boot/switch-config";
import { readSlot, slotEntry, writeSlot } from "../../provider/boot/slot";
import { readSyslinuxConfig, writeSyslinuxConfig } from "../../provider/boot/schemes/syslinux/config";
import { openTarget, type BootTarget } from "../../provider/boot/target";
import { markerInit, makeBusyboxInitramfs } from "../fixtures/busybox-initramfs";
import { debianKernel } from "../fixtures/debian-kernel";
import { syslinuxConfigHandler } from "../../provider/resources/syslinux-config-resource";
import { writeSlotChecked } from "../../provider/deploy/slot-guard";
import { copyImage, makeSlotDisk, TEST_APPEND } from "./slot-disk";

// Each boot goes through QEMU's BIOS, syslinux's mbr.bin, the FAT boot sector and ldlinux: no KVM, ~10 s.
jest.setTimeout(600_000);

let dir: string;
let base: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-syslinux-boot-"));
  base = await makeSlotDisk(dir, "base.img", { a: markerInit("SLOT-A-OK"), b: markerInit("SLOT-B-OK") }, "a");
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function withImage<T>(image: string, use: (target: BootTarget) => Promise<T>): Promise<T> {
  const target = await openTarget({ kind: "image", path: image });
  try {
    return await use(target);
  } finally {
    await target.close();
  }
}

async function bootsTo(image: string, marker: string, extra: { noReboot?: boolean; markerCount?: number } = {}) {
  const result = await bootQemu({ media: { kind: "disk", image }, marker, timeoutMs: 180_000, ...extra });
  if (!result.found) throw new Error(`expected ${marker}, console ended with:\n${logTail(result.log, 40)}`);
  return result;
}

test("DEFAULT a boots slot A; after the config flips DEFAULT, slot B", async () => {
  const image = copyImage(base, dir, "flip.img");
  const first = await bootsTo(image, "SLOT-A-OK");
  expect(first.log).not.toContain("SLOT-B-OK");
  await withImage(image, async (target) => {
    const config = await readSyslinuxConfig(target);
    expect(config?.path).toBe("syslinux.cfg");
    await writeSyslinuxConfig(target, { ...config!.spec, defaultLabel: "b" });
  });
  const second = await bootsTo(image, "SLOT-B-OK");
  expect(second.log).not.toContain("SLOT-A-OK");
});

test("once=b with DEFAULT a: B boots once, then A, and ldlinux has cleared the ADV", async () => {
  const image = copyImage(base, dir, "once.img");
  await withImage(image, async (target) => {
    await setBootOnce(target, "b");
    expect(await readBootOnce(target)).toBe("b");
  });
  const first = await bootsTo(image, "SLOT-B-OK");
  expect(first.log).not.toContain("SLOT-A-OK");
  await withImage(image, async (target) => expect(await readBootOnce(target)).toBeUndefined());
  const second = await bootsTo(image, "SLOT-A-OK");
  expect(second.log).not.toContain("SLOT-B-OK");
  // Promote: DEFAULT becomes b.
  await withImage(image, async (target) => {
    await promote(target, "b");
    expect((await readSyslinuxConfig(target))?.spec.defaultLabel).toBe("b");
  });
});

test("a once-boot left pending for a label the next config lacks is cleared by that write (an interrupted trial), so the disk still boots DEFAULT with TIMEOUT 0", async () => {
  const image = copyImage(base, dir, "stale-once.img");
  // What a trial killed after it set its once-boot leaves: a pending once-boot of a label that
  // the next deploy's config does not have (here b; ramroot's own trial label is ramroot-trial).
  await withImage(image, (target) => setBootOnce(target, "b"));
  const logs: string[] = [];
  const checked = syslinuxConfigHandler.check({
    target: { kind: "image", path: image },
    defaultLabel: "a",
    timeout: 0,
    entries: [slotEntry("a", { microcode: false, append: TEST_APPEND, menuLabel: "slot a" })],
  });
  const outcome = await checked;
  if (!outcome.ok) throw new Error(`inputs refused: ${JSON.stringify(outcome.failures)}`);
  await syslinuxConfigHandler.create(outcome.inputs, { urn: "urn:test", preview: false, log: (m) => logs.push(m) });
  expect(logs.join("\n")).toMatch(/cleared a pending one-time boot of b .*no such label/);
  await withImage(image, async (target) => expect(await readBootOnce(target)).toBeUndefined());
  const boot = await bootsTo(image, "SLOT-A-OK");
  expect(boot.log).not.toContain("SLOT-B-OK");
});

test("a trial slot whose init panics falls back to A by itself (reboots allowed)", async () => {
  const image = await makeSlotDisk(
    dir,
    "panic.img",
    { a: markerInit("SLOT-A-OK"), b: "#!/bin/sh\necho SLOT-B-TRIAL\nexit 1\n" },
    "a",
  );
  await withImage(image, (target) => setBootOnce(target, "b"));
  const result = await bootsTo(image, "SLOT-A-OK", { noReboot: false });
  const log = result.log;
  expect(log).toContain("SLOT-B-TRIAL");
  expect(log).toMatch(/Kernel panic/);
  // B ran first, then the machine came back on A.
  expect(log.indexOf("SLOT-B-TRIAL")).toBeLessThan(log.lastIndexOf("SLOT-A-OK"));
  await withImage(image, async (target) => expect(await readBootOnce(target)).toBeUndefined());
});

test("writing the default slot is refused; a full disk leaves the previous state bootable", async () => {
  const kernel = debianKernel();
  const image = await makeSlotDisk(
    dir,
    "small.img",
    { a: markerInit("SLOT-A-OK"), b: markerInit("SLOT-B-OK") },
    "a",
    24,
  );
  const big = path.join(dir, "big-initramfs");
  fs.writeFileSync(big, Buffer.alloc(16 * 1024 * 1024, 0x5a));
  const before = await withImage(image, async (target) => {
    const initramfs = makeBusyboxInitramfs({ init: markerInit("NEW"), output: path.join(dir, "new.cpio.gz") });
    await expect(
      writeSlotChecked(
        target,
        {
          slot: "a",
          files: { kernel: kernel.vmlinuz, initramfs },
          manifest: { imageId: "x", planId: "y" },
        },
        () => undefined,
      ),
    ).rejects.toThrow(/refusing to write: slot "a" holds what syslinux boots by default \(DEFAULT a in syslinux.cfg\)/);
    const state = {
      a: await readSlot(target, "a"),
      b: await readSlot(target, "b"),
      config: await target.sha256("syslinux.cfg"),
    };
    await expect(
      writeSlot(target, {
        slot: "b",
        files: { kernel: kernel.vmlinuz, initramfs: big },
        manifest: { imageId: "x", planId: "y" },
      }),
    ).rejects.toThrow(/Disk full/i);
    return state;
  });
  await withImage(image, async (target) => {
    expect(await readSlot(target, "a")).toEqual(before.a);
    expect(await readSlot(target, "b")).toEqual(before.b);
    expect(before.b?.consistent).toBe(true);
    expect(await target.sha256("syslinux.cfg")).toBe(before.config);
    expect((await target.list("b")).sort()).toEqual(["initramfs", "manifest.json", "vmlinuz"]);
  });
  await bootsTo(image, "SLOT-A-OK");
});
