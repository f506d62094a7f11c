import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { JOURNAL_BACKUP_PATH, JOURNAL_PATH, readJournal, recordDefault } from "../../../provider/boot/journal";
import { parseUserAppend } from "../../../provider/machine/kernel-append";
import { labelBootProblem, slotEntry, writeSlot } from "../../../provider/boot/slot";
import {
  parseSyslinuxConfigSpec,
  writeSyslinuxConfig,
  type SyslinuxConfigSpec,
} from "../../../provider/boot/schemes/syslinux/config";
import { openTarget, type BootTarget } from "../../../provider/boot/target";

let dir: string;
let target: BootTarget;
beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-guard-"));
  fs.mkdirSync(path.join(dir, "boot"));
  target = await openTarget({ kind: "local", path: path.join(dir, "boot") });
  const file = path.join(dir, "k");
  fs.writeFileSync(file, "kernel and initramfs");
  for (const slot of ["a", "b"])
    await writeSlot(target, {
      slot,
      files: { kernel: file, initramfs: file },
      manifest: { imageId: `image-${slot}`, planId: "p" },
    });
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const spec = (append: (slot: string) => string): SyslinuxConfigSpec => ({
  defaultLabel: "a",
  timeout: 0,
  entries: ["a", "b"].map((s) => slotEntry(s, { microcode: false, append: append(s) })),
});

test("a label boots only when its files are there, match the slot's manifest, and the slot holds the image its entry names", async () => {
  const good = spec((s) => `rdinit=/sbin/init ramroot.image=image-${s}`);
  expect(await labelBootProblem(target, good, "B", "syslinux.cfg")).toBeUndefined();
  // Another deploy rewrote slot b since this config was planned for it.
  const stale = spec((s) => `rdinit=/sbin/init ramroot.image=image-${s === "b" ? "mine" : s}`);
  expect(await labelBootProblem(target, stale, "b", "syslinux.cfg")).toMatch(
    /entry b is for image image-mine, but slot b holds image image-b/,
  );
  // A file changed by hand no longer matches the manifest.
  fs.appendFileSync(path.join(dir, "boot", "b", "initramfs"), "x");
  expect(await labelBootProblem(target, good, "b", "syslinux.cfg")).toMatch(
    /entry b: \/b\/initramfs hashes to [0-9a-f]{12}, but slot b's manifest records [0-9a-f]{12}/,
  );
  fs.rmSync(path.join(dir, "boot", "a", "vmlinuz"));
  expect(await labelBootProblem(target, good, "a", "syslinux.cfg")).toMatch(/entry a: \/a\/vmlinuz does not exist/);
  expect(await labelBootProblem(target, good, "c", "syslinux.cfg")).toMatch(/no entry is labelled "c"/);
});

test("initrd=, BOOT_IMAGE= and newlines are refused in an entry's append; ramroot.image= in a user's", () => {
  const entries = (append: string) =>
    parseSyslinuxConfigSpec({
      defaultLabel: "a",
      timeout: 0,
      entries: [{ label: "a", kernel: "/a/vmlinuz", initrd: ["/a/initramfs"], append }],
    });
  expect(() => entries("console=ttyS0 initrd=/b/initramfs")).toThrow(
    /entries\[0\]\.append: got "console=ttyS0 initrd=\/b\/initramfs"; expected no initrd= or BOOT_IMAGE=/,
  );
  expect(() => entries("console=ttyS0 INITRD=/b/initramfs")).toThrow(/expected no initrd=/);
  expect(() => entries("BOOT_IMAGE=/b/vmlinuz")).toThrow(/expected no initrd= or BOOT_IMAGE=/);
  expect(() => entries("quiet\nDEFAULT b")).toThrow(/expected a single line/);
  expect(entries("quiet ramroot.image=x").entries[0]?.append).toBe("quiet ramroot.image=x");
  expect(parseUserAppend("quiet loglevel=3")).toBe("quiet loglevel=3");
  expect(parseUserAppend(undefined)).toBe("");
  expect(() => parseUserAppend("ramroot.image=other")).toThrow(
    /append: got "ramroot.image=other"; expected no ramroot.image=/,
  );
  expect(() => parseUserAppend("a\nb")).toThrow(/append: got "a\\nb"; expected a single line/);
});

test("the journal keeps a backup; a damaged one is an error naming the way back, never read as empty", async () => {
  await writeSyslinuxConfig(
    target,
    spec(() => "rdinit=/sbin/init"),
  );
  await recordDefault(target, "switch");
  await writeSyslinuxConfig(target, { ...spec(() => "rdinit=/sbin/init"), defaultLabel: "b" });
  await recordDefault(target, "switch");
  expect((await readJournal(target)).map((e) => e.slot)).toEqual(["a", "b"]);
  const journal = path.join(dir, "boot", JOURNAL_PATH);
  const whole = fs.readFileSync(journal);
  fs.writeFileSync(journal, whole.subarray(0, whole.length / 2));
  await expect(readJournal(target)).rejects.toThrow(
    /journal ramroot\/journal\.json is damaged \(it is not JSON .*\); nothing was changed\. ramroot\/journal\.json\.bak holds the journal before its last entry \(1 entries\)/,
  );
  await expect(recordDefault(target, "switch")).rejects.toThrow(/is damaged/);
  expect(fs.readFileSync(journal).length).toBe(Math.floor(whole.length / 2)); // untouched
  fs.rmSync(path.join(dir, "boot", JOURNAL_BACKUP_PATH));
  await expect(readJournal(target)).rejects.toThrow(/no intact backup .* move ramroot\/journal\.json aside/);
});
