import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createDisk } from "../../provider/boot/disk-create";
import { collectLayers, layerPath, layersProblem, putLayers, type LayerSpec } from "../../provider/boot/layer-store";
import { assertLabelBootable, readSlot, slotEntry, writeSlot } from "../../provider/boot/slot";
import { readSyslinuxConfig, writeSyslinuxConfig } from "../../provider/boot/schemes/syslinux/config";
import { withTarget, type BootTarget } from "../../provider/boot/target";
import { sha256File } from "../../provider/file-hash";
import { compressor } from "../../provider/image/compress";
import { writeCpio } from "../../provider/image/cpio-writer";
import { bootQemu, logTail } from "../../provider/qemu/boot";
import { makeBusyboxInitramfs, markerInit } from "../fixtures/busybox-initramfs";
import { debianKernel } from "../fixtures/debian-kernel";
import { TEST_APPEND } from "./slot-disk";

// The layer store (provider/boot/layer-store.ts) on a real FAT disk image: an initramfs of two
// archives is cut back into its layers and kept under 8.3 names in layers/, and a layered slot
// (writeSlot with the image's layers: no b/initramfs, syslinux's `INITRD /layers/x,/layers/y`)
// boots the same machine as the folded file in slot a. Two boots through QEMU's BIOS and
// syslinux (~10-20 s each under TCG), their times logged side by side.
jest.setTimeout(600_000);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-layer-store-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A gzip newc archive holding /etc/which, replacing the base layer's. */
async function topLayer(out: string, which: string): Promise<void> {
  const raw = new PassThrough();
  const done = pipeline(raw, compressor("gzip")!, fs.createWriteStream(out));
  await writeCpio([{ path: "etc/which", type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(which) }], raw, {
    epoch: 1700000000,
  });
  raw.end();
  await done;
}

async function spec(file: string): Promise<LayerSpec> {
  return { sha256: (await sha256File(file))!, size: fs.statSync(file).size };
}

/** The disk image as a boot target, for the length of `use`. */
const withImage = <T>(image: string, use: (target: BootTarget) => Promise<T>) =>
  withTarget({ kind: "image", path: image }, use);

test("layers cut from an initramfs are stored once, verified by hash, collected, and boot the same machine as the folded slot", async () => {
  const base = makeBusyboxInitramfs({
    init: markerInit("LAYERED-BOOT-OK", 'echo "WHICH=$(cat /etc/which)"'),
    output: path.join(dir, "base.cpio.gz"),
  });
  const top = path.join(dir, "top.cpio.gz");
  const edited = path.join(dir, "edited.cpio.gz");
  await topLayer(top, "top-layer");
  await topLayer(edited, "edited-layer");
  const folded = path.join(dir, "initramfs");
  fs.writeFileSync(folded, Buffer.concat([fs.readFileSync(base), fs.readFileSync(top)]));
  const layers = [await spec(base), await spec(top)];

  const image = path.join(dir, "disk.img");
  await createDisk({ output: image, sizeMiB: 48, layout: "mbr", slots: ["a", "b"] });
  await withImage(image, async (target) => {
    await writeSlot(target, {
      slot: "a",
      files: { kernel: debianKernel().vmlinuz, initramfs: folded },
      manifest: { imageId: "folded", planId: "plan-folded", when: "1980-01-01T00:00:00Z" },
    });
    const first = await putLayers(target, folded, layers, dir);
    expect(first.sent).toBe(fs.statSync(folded).size);
    expect(first.records.map((r) => r.path)).toEqual(layers.map((l) => layerPath(l.sha256)));
    expect(first.records[0]!.path).toMatch(/^layers\/[0-9a-f]{8}\.[0-9a-f]{3}$/);
    // Again: everything is there, nothing is sent.
    expect((await putLayers(target, folded, layers, dir)).sent).toBe(0);
    // An overlay edit: only the changed layer is sent.
    const editedFolded = path.join(dir, "initramfs-edited");
    fs.writeFileSync(editedFolded, Buffer.concat([fs.readFileSync(base), fs.readFileSync(edited)]));
    const second = await putLayers(target, editedFolded, [layers[0]!, await spec(edited)], dir);
    expect(second.sent).toBe(fs.statSync(edited).size);
    expect(await layersProblem(target, first.records)).toBeUndefined();
    // A layer list that does not describe the file is refused before anything is sent.
    await expect(putLayers(target, folded, [layers[1]!, layers[0]!], dir)).rejects.toThrow(
      /does not describe its initramfs/,
    );
    // Only what no slot needs is collected: the edited layer goes, the booted ones stay.
    expect(await collectLayers(target, first.records)).toEqual([second.records[1]!.path]);
    expect(await collectLayers(target, first.records)).toEqual([]);
    // The deploy path: slot b written layered, the store collected against both slots' manifests.
    const b = await writeSlot(target, {
      slot: "b",
      files: { kernel: debianKernel().vmlinuz, initramfs: folded },
      layers,
      manifest: { imageId: "layered", planId: "plan-layered", when: "1980-01-01T00:00:00Z" },
    });
    expect(await target.list("b")).toEqual(["manifest.json", "vmlinuz"]);
    expect(b.consistent).toBe(true);
    expect((await target.list("layers")).sort()).toEqual(first.records.map((r) => path.posix.basename(r.path)).sort());
    const config = {
      defaultLabel: "a",
      timeout: 0,
      entries: [
        slotEntry("a", { microcode: false, append: TEST_APPEND }),
        slotEntry("b", { microcode: false, append: TEST_APPEND, layers: b.manifest?.layers }),
      ],
    };
    expect(config.entries[1]!.initrd).toEqual(first.records.map((r) => `/${r.path}`));
    await assertLabelBootable(target, config, "b", "syslinux.cfg");
    await writeSyslinuxConfig(target, config);
  });

  const boot = async (label: string) => {
    await withImage(image, async (target) => {
      const read = await readSyslinuxConfig(target);
      await writeSyslinuxConfig(target, { ...read!.spec, defaultLabel: label });
    });
    const t0 = Date.now();
    const result = await bootQemu({ media: { kind: "disk", image }, marker: "LAYERED-BOOT-OK", timeoutMs: 180_000 });
    // For the record, not asserted (the machine is shared): the layered entry's boot beside the folded one's.
    console.log(`boot of ${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s to the marker`);
    if (!result.found) throw new Error(`label ${label}: console ended with:\n${logTail(result.log, 40)}`);
    return /WHICH=(\S+)/.exec(result.log)?.[1];
  };
  // The folded slot and the layered entry: the same machine (the top layer's /etc/which).
  expect(await boot("a")).toBe("top-layer");
  expect(await boot("b")).toBe("top-layer");

  // A layer changed on the partition is found by hashing: slot b no longer reads as written, and its entry is refused.
  await withImage(image, async (target) => {
    const records = layers.map((l) => ({ ...l, path: layerPath(l.sha256) }));
    await target.writeFileAtomic(records[1]!.path, "not the layer");
    expect(await layersProblem(target, records)).toMatch(/hashes to .*, not /);
    expect((await readSlot(target, "b"))?.consistent).toBe(false);
    const read = await readSyslinuxConfig(target);
    await expect(assertLabelBootable(target, read!.spec, "b", read!.path)).rejects.toThrow(
      /slot b: layer layers\/.*hashes to/,
    );
  });
});
