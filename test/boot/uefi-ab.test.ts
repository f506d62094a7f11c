/**
 * A/B on an EFI system partition under OVMF: `disk create --scheme uefi` (systemd-boot from
 * Debian's systemd-boot-efi), two slots written by ramroot, loader.conf's default the switch.
 * The switch is the engine's one safe switch (switch-config.ts), on a disk image, under the
 * target's lease: the scheme is found on the partition, not told.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bootQemu, logTail } from "../../provider/qemu/boot";
import { withLease } from "../../provider/boot/lease";
import { schemeOf } from "../../provider/boot/schemes/registry";
import { switchBootConfig } from "../../provider/boot/switch-config";
import { openTarget } from "../../provider/boot/target";
import { markerInit } from "../fixtures/busybox-initramfs";
import { makeSlotDisk } from "./slot-disk";

// Each boot goes through OVMF, systemd-boot and the kernel's EFI stub, no KVM.
jest.setTimeout(600_000);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-uefi-ab-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function bootsTo(image: string, marker: string) {
  const result = await bootQemu({ uefi: true, media: { kind: "disk", image }, marker, timeoutMs: 240_000 });
  if (!result.found) throw new Error(`expected ${marker}, console ended with:\n${logTail(result.log, 40)}`);
  return result;
}

test("default a boots slot A through systemd-boot; after the switch to b, slot B", async () => {
  const image = await makeSlotDisk(
    dir,
    "esp.img",
    { a: markerInit("SLOT-A-OK"), b: markerInit("SLOT-B-OK") },
    "a",
    64,
    "uefi",
  );
  const first = await bootsTo(image, "SLOT-A-OK");
  expect(first.log).not.toContain("SLOT-B-OK");

  const target = await openTarget({ kind: "image", path: image });
  try {
    const scheme = await schemeOf(target);
    expect(scheme.name).toBe("uefi");
    const config = await scheme.readConfig(target);
    expect(config?.spec.defaultLabel).toBe("a");
    expect(config?.spec.entries.map((e) => e.label)).toEqual(["a", "b"]);
    await withLease(target, { owner: "uefi-ab test" }, (lease) =>
      switchBootConfig(target, { ...config!.spec, defaultLabel: "b" }, { lease }),
    );
    expect((await target.readFile("loader/loader.conf"))?.toString()).toMatch(/^default b\.conf$/m);
  } finally {
    await target.close();
  }
  const second = await bootsTo(image, "SLOT-B-OK");
  expect(second.log).not.toContain("SLOT-A-OK");
});
