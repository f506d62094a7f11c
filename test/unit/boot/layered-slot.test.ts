import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { layerPath, type LayerSpec } from "../../../provider/boot/layer-store";
import { labelBootProblem, readSlot, slotEntry, writeSlot } from "../../../provider/boot/slot";
import { openTarget, type BootTarget } from "../../../provider/boot/target";
import { imageBytes } from "../../../provider/deploy/image-source";
import { renderLoaderConfig } from "../../../provider/boot/schemes/uefi/loader-config";
import { sha256File } from "../../../provider/file-hash";
import { compressor } from "../../../provider/image/compress";
import { writeCpio } from "../../../provider/image/cpio-writer";

// A layered slot (docs/layer-store.md) on a local boot directory: the deploy path's writeSlot puts
// the image's layers in the store and writes no <slot>/initramfs, the manifest keeps the layer
// records, readSlot verifies by hashing them, the entry loads them, collection follows the
// manifests, and a rollback reads the slot back as the layers concatenated.

let dir: string;
let boot: string;
let target: BootTarget;
beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-layered-slot-"));
  boot = path.join(dir, "boot");
  fs.mkdirSync(boot);
  target = await openTarget({ kind: "local", path: boot });
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A gzip newc archive holding one file: a real layer. */
async function layer(name: string, content: string): Promise<string> {
  const out = path.join(dir, `${name}-${content.replace(/\W/g, "-")}.cpio.gz`);
  const raw = new PassThrough();
  const done = pipeline(raw, compressor("gzip")!, fs.createWriteStream(out));
  await writeCpio(
    [{ path: `etc/${name}`, type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from(content) }],
    raw,
    {
      epoch: 1700000000,
    },
  );
  raw.end();
  await done;
  return out;
}

/** An initramfs of these layers in order, and its layer list as an image records it. */
async function image(name: string, parts: string[]): Promise<{ initramfs: string; layers: LayerSpec[] }> {
  const initramfs = path.join(dir, `${name}.initramfs`);
  fs.writeFileSync(initramfs, Buffer.concat(parts.map((p) => fs.readFileSync(p))));
  const layers = [];
  for (const p of parts) layers.push({ sha256: (await sha256File(p))!, size: fs.statSync(p).size });
  return { initramfs, layers };
}

const kernel = () => {
  const file = path.join(dir, "vmlinuz");
  if (!fs.existsSync(file)) fs.writeFileSync(file, "a kernel");
  return file;
};

const storeFiles = () => (fs.existsSync(path.join(boot, "layers")) ? fs.readdirSync(path.join(boot, "layers")) : []);

test("a layered slot holds no initramfs, is verified by its layers, boots from its entry, shares layers and is read back whole", async () => {
  const base = await layer("base", "packages");
  const top = await layer("top", "overlay one");
  const edited = await layer("top", "overlay two");
  const one = await image("one", [base, top]);
  const two = await image("two", [base, edited]);

  const a = await writeSlot(target, {
    slot: "a",
    files: { kernel: kernel(), initramfs: one.initramfs },
    layers: one.layers,
    manifest: { imageId: "image-one", planId: "plan-one" },
  });
  expect(fs.readdirSync(path.join(boot, "a")).sort()).toEqual(["manifest.json", "vmlinuz"]);
  expect(a.consistent).toBe(true);
  expect(a.manifest?.layers?.map((l) => l.path)).toEqual(one.layers.map((l) => layerPath(l.sha256)));
  // files.initramfs is the whole initramfs: what the image id is made of.
  expect(a.files.initramfs?.sha256).toBe(await sha256File(one.initramfs));
  expect(a.manifest?.files.initramfs?.size).toBe(fs.statSync(one.initramfs).size);
  expect(storeFiles()).toHaveLength(2);

  // The entry loads the layers in order; it boots what the slot holds.
  const entry = slotEntry("a", { microcode: false, append: "console=ttyS0", layers: a.manifest?.layers });
  expect(entry.initrd).toEqual(one.layers.map((l) => `/${layerPath(l.sha256)}`));
  const spec = { defaultLabel: "a", timeout: 0, entries: [entry] };
  expect(await labelBootProblem(target, spec, "a", "syslinux.cfg")).toBeUndefined();
  // The uefi scheme's type-1 entry from the same records: one initrd line per layer, in order, and
  // the slot on its command line (the layers' paths name the store, not the slot: booted-slot.ts).
  expect(renderLoaderConfig(spec)).toContain(
    `linux /a/vmlinuz\n${one.layers.map((l) => `initrd /${layerPath(l.sha256)}\n`).join("")}options console=ttyS0 ramroot.slot=a\n`,
  );
  // An entry naming a layer the slot's manifest does not name is not bootable.
  const stray = { ...entry, initrd: [`/${layerPath(two.layers[1]!.sha256)}`] };
  expect(await labelBootProblem(target, { ...spec, entries: [stray] }, "a", "syslinux.cfg")).toMatch(
    /is no layer of slot a's manifest/,
  );

  // Read back whole (a rollback from the slot): the layers concatenated, the same bytes.
  expect(
    (await imageBytes({ kind: "slot", target: { kind: "local", path: boot }, slot: "a" })).equals(
      fs.readFileSync(one.initramfs),
    ),
  ).toBe(true);

  // Slot b shares the package layer: one more file in the store, not two.
  await writeSlot(target, {
    slot: "b",
    files: { kernel: kernel(), initramfs: two.initramfs },
    layers: two.layers,
    manifest: { imageId: "image-two", planId: "plan-two" },
  });
  expect(storeFiles()).toHaveLength(3);

  // A whole-file write of slot a: its layers are collected unless b names them; the old slot reads as before.
  const wholeA = await writeSlot(target, {
    slot: "a",
    files: { kernel: kernel(), initramfs: one.initramfs },
    manifest: { imageId: "image-one", planId: "plan-one" },
  });
  expect(wholeA.consistent).toBe(true);
  expect(wholeA.manifest?.layers).toBeUndefined();
  expect(wholeA.files.initramfs).toEqual({ path: "a/initramfs", sha256: await sha256File(one.initramfs) });
  expect(storeFiles().sort()).toEqual(two.layers.map((l) => path.posix.basename(layerPath(l.sha256))).sort());

  // Within one operation (one open target) each layer is hashed once: the write's put, its read-back and the
  // check of the entry that boots it take what the put hashed or read back.
  const hashed: string[] = [];
  const opened = await openTarget({ kind: "local", path: boot });
  const counted = new Proxy(opened, {
    get(obj, prop) {
      const value = Reflect.get(obj, prop) as unknown;
      if (prop === "sha256") return (rel: string) => (hashed.push(rel), opened.sha256(rel));
      if (prop === "sha256Many")
        return opened.sha256Many && ((rels: string[]) => (hashed.push(...rels), opened.sha256Many!(rels)));
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(obj) : value;
    },
  });
  const again = await writeSlot(counted, {
    slot: "b",
    files: { kernel: kernel(), initramfs: two.initramfs },
    layers: two.layers,
    manifest: { imageId: "image-two", planId: "plan-two" },
  });
  const entryAgain = slotEntry("b", { microcode: false, append: "console=ttyS0", layers: again.manifest?.layers });
  expect(
    await labelBootProblem(counted, { defaultLabel: "b", timeout: 0, entries: [entryAgain] }, "b", "syslinux.cfg"),
  ).toBeUndefined();
  for (const l of two.layers) expect(hashed.filter((rel) => rel === layerPath(l.sha256))).toHaveLength(1);
  await opened.close();

  // A changed layer is found by hashing in the next operation: the slot is not consistent, and its entry is not bootable.
  fs.writeFileSync(path.join(boot, layerPath(two.layers[1]!.sha256)), "not the layer");
  await target.close();
  target = await openTarget({ kind: "local", path: boot });
  const b = await readSlot(target, "b");
  expect(b?.consistent).toBe(false);
  expect(b?.files.initramfs).toBeUndefined();
  expect(b?.layersProblem).toMatch(/hashes to .*, not /);
  const entryB = slotEntry("b", { microcode: false, append: "console=ttyS0", layers: b?.manifest?.layers });
  expect(
    await labelBootProblem(target, { defaultLabel: "b", timeout: 0, entries: [entryB] }, "b", "syslinux.cfg"),
  ).toMatch(/slot b: layer layers\/.* hashes to/);
  await expect(imageBytes({ kind: "slot", target: { kind: "local", path: boot }, slot: "b" })).rejects.toThrow(
    /cannot be read back/,
  );
});

test("a layer list that does not describe the initramfs is refused before the slot changes", async () => {
  const base = await layer("base", "packages");
  const top = await layer("top", "overlay");
  const one = await image("one", [base, top]);
  await writeSlot(target, {
    slot: "a",
    files: { kernel: kernel(), initramfs: one.initramfs },
    manifest: { imageId: "image-one", planId: "plan-one" },
  });
  const before = fs.readFileSync(path.join(boot, "a", "manifest.json"));
  await expect(
    writeSlot(target, {
      slot: "a",
      files: { kernel: kernel(), initramfs: one.initramfs },
      layers: [one.layers[1]!, one.layers[0]!],
      manifest: { imageId: "image-two", planId: "plan-two" },
    }),
  ).rejects.toThrow(/does not describe its initramfs/);
  expect(fs.readFileSync(path.join(boot, "a", "manifest.json")).equals(before)).toBe(true);
  expect(storeFiles()).toEqual([]);
  await expect(
    writeSlot(target, {
      slot: "layers",
      files: { kernel: kernel(), initramfs: one.initramfs },
      manifest: { imageId: "x", planId: "y" },
    }),
  ).rejects.toThrow(/slot.*layer store/);
});
