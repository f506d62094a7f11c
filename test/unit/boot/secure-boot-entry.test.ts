/**
 * A Secure Boot slot's entries: the slot's entry boots its signed UKI with `efi` (its command
 * line baked in, and the same on `options`), the trial entry boots the slot's trial UKI; a
 * loader.conf and entries written so read back as the same entries.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { slotEntry } from "../../../provider/boot/slot";
import { trialEntry } from "../../../provider/boot/trial";
import { openTarget } from "../../../provider/boot/target";
import {
  readLoaderConfig,
  renderLoaderConfig,
  writeLoaderConfig,
} from "../../../provider/boot/schemes/uefi/loader-config";

test("a UKI entry is `efi /<slot>/ramroot.efi`; its trial boots ramroot-trial.efi with ramroot.trial=1; written and read back the same", async () => {
  const append = "rdinit=/sbin/init console=ttyS0 ramroot.image=abc panic=10";
  const a = slotEntry("a", { microcode: true, append, menuLabel: "ramroot abc", uki: true });
  // the slot on the command line: the UKI's baked one is all its kernel gets (no loader mark names the slot)
  const named = `${append} ramroot.slot=a`;
  expect(a).toEqual({ label: "a", menuLabel: "ramroot abc", kernel: "/a/ramroot.efi", initrd: [], append: named });
  const trial = trialEntry(a);
  expect(trial.kernel).toBe("/a/ramroot-trial.efi");
  expect(trial.append).toBe(`${named} ramroot.trial=1`);
  // A kernel entry's trial keeps its kernel.
  expect(trialEntry(slotEntry("b", { microcode: false, append })).kernel).toBe("/b/vmlinuz");

  const b = slotEntry("b", { microcode: false, append: append.replace("abc", "def") });
  const spec = { defaultLabel: "a", timeout: 0, serial: false as const, entries: [a, b] };
  const text = renderLoaderConfig(spec);
  expect(text).toContain("#> loader/entries/a.conf\ntitle ramroot abc\nefi /a/ramroot.efi\noptions rdinit=");
  expect(text).toContain("#> loader/entries/b.conf\ntitle b\nlinux /b/vmlinuz\ninitrd /b/initramfs\n");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sb-entry-"));
  const target = await openTarget({ kind: "local", path: dir });
  try {
    await writeLoaderConfig(target, spec);
    const read = await readLoaderConfig(target);
    expect(read?.text).toBe(text);
    expect(read?.spec.entries.find((e) => e.label === "a")).toEqual(a);
  } finally {
    await target.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
