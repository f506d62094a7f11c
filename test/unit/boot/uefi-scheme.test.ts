/**
 * The UEFI boot scheme on a disk image, without booting: `disk create --scheme uefi` lays out an
 * ESP with systemd-boot (same options, same bytes), the scheme is found on it, loader.conf and
 * one Type #1 entry per slot are written and read back, the compare-and-swap refuses a config
 * changed behind the writer's back, and a one-time boot, which lives in a machine's NVRAM, is
 * refused on an image with a clear error. A syslinux disk is still found as syslinux.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createDisk } from "../../../provider/boot/disk-create";
import { readMbrPartitions } from "../../../provider/boot/mbr";
import { schemeOf } from "../../../provider/boot/schemes/registry";
import { slotEntry } from "../../../provider/boot/slot";
import { openTarget } from "../../../provider/boot/target";
import { sha256Hex } from "../../../provider/file-hash";

jest.setTimeout(60_000);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-uefi-scheme-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const spec = (defaultLabel: string) => ({
  defaultLabel,
  timeout: 0,
  entries: ["a", "b"].map((s) =>
    slotEntry(s, { microcode: true, append: "rdinit=/sbin/init console=ttyS0 panic=10", menuLabel: `slot ${s}` }),
  ),
});

test("an ESP with systemd-boot: same bytes twice, found as uefi, loader.conf and entries written, read back, compared and swapped", async () => {
  const opts = { sizeMiB: 32, layout: "mbr", scheme: "uefi", slots: ["a", "b"], volumeId: 0x45535030 } as const;
  const one = await createDisk({ ...opts, slots: ["a", "b"], output: path.join(dir, "one.img") });
  const two = await createDisk({ ...opts, slots: ["a", "b"], output: path.join(dir, "two.img") });
  expect(one.sha256).toBe(two.sha256);
  const sector0 = Buffer.alloc(512);
  const fd = fs.openSync(one.output, "r");
  fs.readSync(fd, sector0, 0, 512, 0);
  fs.closeSync(fd);
  expect(readMbrPartitions(sector0)[0]).toMatchObject({ type: 0xef, active: false });

  const target = await openTarget({ kind: "image", path: one.output });
  try {
    expect(await target.sha256("EFI/BOOT/BOOTX64.EFI")).toBe(
      sha256Hex(fs.readFileSync("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")),
    );
    const scheme = await schemeOf(target);
    expect(scheme.name).toBe("uefi");
    expect(await scheme.readConfig(target)).toBeUndefined();

    const written = await scheme.writeConfig(target, spec("a"), { expectedSha256: null });
    expect((await target.readFile("loader/loader.conf"))?.toString()).toMatch(/^default a\.conf$/m);
    expect((await target.readFile("loader/entries/b.conf"))?.toString()).toBe(
      "title slot b\nlinux /b/vmlinuz\ninitrd /b/microcode\ninitrd /b/initramfs\noptions rdinit=/sbin/init console=ttyS0 panic=10\n",
    );
    const read = await scheme.readConfig(target);
    expect(read?.text).toBe(scheme.renderConfig(spec("a")));
    expect(sha256Hex(read!.text)).toBe(written.sha256);
    expect(read?.spec).toMatchObject({ defaultLabel: "a", entries: spec("a").entries });

    // Another writer switched it since this one read: nothing is written.
    await scheme.writeConfig(target, spec("b"));
    await expect(scheme.writeConfig(target, spec("a"), { expectedSha256: written.sha256 })).rejects.toThrow(
      /changed since they were read \(now default b\).*nothing was written/,
    );
    expect((await scheme.readConfig(target))?.spec.defaultLabel).toBe("b");

    // An entry the new config lacks is removed after the default moved off it.
    await scheme.writeConfig(target, { ...spec("b"), entries: spec("b").entries.filter((e) => e.label === "b") });
    expect(await target.list("loader/entries")).toEqual(["b.conf"]);

    await expect(scheme.writeConfig(target, { ...spec("a"), defaultLabel: "A" })).rejects.toThrow(
      /defaultLabel: got "A"/,
    );
    await expect(scheme.setBootOnce(target, "b")).rejects.toThrow(/LoaderEntryOneShot .* needs an ssh target/);
    expect(await scheme.readBootOnce(target)).toBeUndefined();
  } finally {
    await target.close();
  }

  const bios = await createDisk({ sizeMiB: 32, slots: ["a"], output: path.join(dir, "bios.img") });
  const other = await openTarget({ kind: "image", path: bios.output });
  try {
    expect((await schemeOf(other)).name).toBe("syslinux");
  } finally {
    await other.close();
  }
});
