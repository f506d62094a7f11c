import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createDisk } from "../../provider/boot/disk-create";
import { inspectTarget } from "../../provider/boot/inspect";
import { openTarget, type TargetSpec } from "../../provider/boot/target";
import { readLoaderConfig } from "../../provider/boot/schemes/uefi/loader-config";
import { rollback } from "../../provider/deploy/rollback";
import { buildImageRepo, type ImageRepo } from "../fixtures/image-repo";
import { step } from "../fixtures/scenario-step";
import { machineStack, type EngineStack } from "./pulumi-harness";
import { expectEspImport } from "./esp-import";

// An AbSystem on an EFI system partition (`ramroot disk create --scheme uefi`: systemd-boot,
// loader.conf and Type #1 entries), through the real pulumi engine and provider plugin: up, an
// edit whose preview names the entry and the default that change, up, rollback, an explicit
// scheme the partition contradicts, and an import of what the ESP holds. No QEMU: the OVMF boot
// of such a disk is test/boot/uefi-ab.test.ts.
jest.setTimeout(900_000);

let env: EngineStack;
let repo: ImageRepo;
let disk: string;
let overlay: string;

const sha256 = (file: string) => crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
const target = (): TargetSpec => ({ kind: "image", path: disk });

function imageConfig() {
  return {
    repositories: [repo.repository],
    keys: [repo.keysDir],
    packages: ["alpine-baselayout", "busybox", "ramroot-init"],
    kernel: "lts",
    overlay,
    hostname: "uefi-engine",
    cmdline: "console=ttyS0",
    epoch: 1700000000,
  };
}

/** loader.conf's default and each entry file's text, as systemd-boot reads them off the ESP. */
async function esp(): Promise<{ defaultLabel: string; entries: Record<string, string> }> {
  const t = await openTarget(target());
  try {
    const config = await readLoaderConfig(t);
    const entries: Record<string, string> = {};
    for (const name of await t.list("loader/entries"))
      entries[name] = (await t.readFile(`loader/entries/${name}`))!.toString("utf8");
    return { defaultLabel: config?.spec.defaultLabel ?? "", entries };
  } finally {
    await t.close();
  }
}

beforeAll(async () => {
  env = await machineStack("uefi");
  process.env.RAMROOT_IMAGE_CACHE = path.join(env.dir, "images");
  repo = await buildImageRepo(path.join(env.dir, "repo"));
  overlay = path.join(env.dir, "root");
  fs.mkdirSync(path.join(overlay, "etc", "ramroot"), { recursive: true });
  fs.writeFileSync(path.join(overlay, "etc", "ramroot", "message"), "first\n");
  disk = path.join(env.dir, "esp.img");
  await createDisk({ output: disk, sizeMiB: 64, layout: "mbr", slots: ["a", "b"], scheme: "uefi" });
  await env.stack.setAllConfig({
    "ramroot:target": { value: JSON.stringify(target()) },
    "ramroot:image": { value: JSON.stringify(imageConfig()) },
  });
});
afterAll(async () => env?.cleanup());

test("an AbSystem on an ESP: up writes entry a, an edit previews entry b and the default, rollback, a contradicting scheme, import", async () => {
  const first = await step("up: slot a and its entry, loader.conf's default a.conf", async () => {
    const up = await env.stack.up();
    expect(up.summary.result).toBe("succeeded");
    expect(up.outputs.activeSlot!.value).toBe("a");
    const image = up.outputs.imageId!.value as string;
    const now = await esp();
    expect(now.defaultLabel).toBe("a");
    expect(Object.keys(now.entries)).toEqual(["a.conf"]);
    expect(now.entries["a.conf"]).toMatch(/^linux \/a\/vmlinuz$/m);
    // a layered slot: its initrds are the shared store's layers, and its command line names the
    // slot (systemd-boot's initrd= paths name the store: provider/boot/booted-slot.ts)
    expect(now.entries["a.conf"]).toMatch(/^initrd \/layers\/[0-9a-f]{8}\.[0-9a-f]{3}$/m);
    expect(now.entries["a.conf"]).not.toMatch(/^initrd \/a\/initramfs$/m);
    expect(now.entries["a.conf"]).toMatch(/^options .* ramroot\.slot=a$/m);
    expect(now.entries["a.conf"]).toMatch(new RegExp(`^options .*ramroot\\.image=${image}.* panic=10`, "m"));
    const state = await env.stack.exportStack();
    const config = state.deployment.resources.find((r: { type: string }) => r.type === "ramroot:index:SyslinuxConfig");
    expect(config.outputs).toMatchObject({ scheme: "uefi", path: "loader/loader.conf" });
    return image;
  });

  await step("the scheme named as the partition holds it: no change", async () => {
    await env.stack.setConfig("ramroot:scheme", { value: "uefi" });
    const preview = await env.stack.preview({ diff: true });
    expect(preview.changeSummary.update ?? 0).toBe(0);
    expect(preview.changeSummary.create ?? 0).toBe(0);
  });

  await step(
    "an explicit scheme the partition contradicts: one error naming the field, the value and what the ESP holds",
    async () => {
      const before = sha256(disk);
      await env.stack.setConfig("ramroot:scheme", { value: "syslinux" });
      await expect(env.stack.preview()).rejects.toThrow(
        /scheme: got "syslinux"; image .*esp\.img.* holds systemd-boot \(loader\/loader\.conf\); set scheme: "uefi"/,
      );
      await expect(env.stack.up()).rejects.toThrow(/scheme: got "syslinux"/);
      expect(sha256(disk)).toBe(before);
      await env.stack.setConfig("ramroot:scheme", { value: "uefi" });
    },
  );

  const second = await step(
    "an edited file: the preview names slot b, entry b and the default a -> b; up writes them",
    async () => {
      fs.writeFileSync(path.join(overlay, "etc", "ramroot", "message"), "second\n");
      const before = sha256(disk);
      const preview = await env.stack.preview({ diff: true });
      const out = preview.stdout;
      expect(out).toMatch(/machine-slot-b/);
      expect(out).toMatch(/~ ramroot:index:SyslinuxConfig: \(update\)/);
      expect(out).toMatch(/defaultLabel\s*: "a" => "b"/);
      expect(out).toMatch(/\+ \[1\]: \{[\s\S]*label\s*: "b"/);
      expect(sha256(disk)).toBe(before);
      const up = await env.stack.up();
      expect(up.outputs.activeSlot!.value).toBe("b");
      const image = up.outputs.imageId!.value as string;
      expect(image).not.toBe(first);
      const now = await esp();
      expect(now.defaultLabel).toBe("b");
      expect(Object.keys(now.entries).sort()).toEqual(["a.conf", "b.conf"]);
      expect(now.entries["b.conf"]).toMatch(new RegExp(`ramroot\\.image=${image}`));
      expect(now.entries["a.conf"]).toMatch(new RegExp(`ramroot\\.image=${first}`));
      return image;
    },
  );

  await step("ramroot rollback: loader.conf's default back to a, no slot copied", async () => {
    const before = await inspectTarget(target(), ["a", "b"]);
    const result = await rollback(env.stack, target());
    expect(result.inSlot).toBe("a");
    const after = await inspectTarget(target(), ["a", "b"]);
    expect(after.defaultLabel).toBe("a");
    expect(after.slots.a?.manifest?.when).toBe(before.slots.a?.manifest?.when);
    expect(after.slots.b?.manifest?.imageId).toBe(second);
    expect((await esp()).defaultLabel).toBe("a");
  });

  await step("import: another stack adopts the ESP's config and slots by their ids, writing nothing", async () => {
    await expectEspImport("uefi-import", target(), "a");
  });
});
