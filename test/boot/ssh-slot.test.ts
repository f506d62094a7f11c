import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { readSlot, runningSlotOf, slotEntry, writeSlot } from "../../provider/boot/slot";
import { writeSyslinuxConfig } from "../../provider/boot/schemes/syslinux/config";
import { SshTarget } from "../../provider/boot/ssh-target";
import { openTarget, type TargetSpec } from "../../provider/boot/target";
import { writeSlotChecked } from "../../provider/deploy/slot-guard";
import { sshTarget, startSshd, type TestSshd } from "./sshd";

jest.setTimeout(180_000);

let sshd: TestSshd;
let root: string;
let work: string;
let spec: TargetSpec;
beforeAll(async () => {
  sshd = await startSshd();
  root = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sshboot-"));
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sshwork-"));
  spec = sshTarget(sshd, root);
});
afterAll(async () => {
  await sshd?.stop();
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

function file(name: string, size: number, seed: number): string {
  const p = path.join(work, name);
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4096) buf.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  fs.writeFileSync(p, buf);
  return p;
}

const sha = (p: string) => createHash("sha256").update(fs.readFileSync(p)).digest("hex");

test("slot copy over ssh: verified, atomic; killing the copy midway leaves old slot and config intact; default refused", async () => {
  const target = await openTarget(spec);
  if (!(target instanceof SshTarget)) throw new Error("expected an ssh target");
  try {
    const oldKernel = file("old-vmlinuz", 300_000, 1);
    const oldInitramfs = file("old-initramfs", 500_000, 2);
    for (const slot of ["a", "b"]) {
      await writeSlot(target, {
        slot,
        files: { kernel: oldKernel, initramfs: oldInitramfs },
        manifest: { imageId: `old-${slot}`, planId: "p0" },
      });
    }
    const config = await writeSyslinuxConfig(target, {
      defaultLabel: "a",
      timeout: 0,
      entries: ["a", "b"].map((s) => slotEntry(s, { microcode: false, append: "rdinit=/sbin/init panic=5" })),
    });
    const before = await readSlot(target, "b");
    expect(before?.consistent).toBe(true);
    expect(before?.files.initramfs?.sha256).toBe(sha(oldInitramfs));

    // The default slot is refused, over ssh as anywhere.
    await expect(
      writeSlotChecked(
        target,
        {
          slot: "a",
          files: { kernel: oldKernel, initramfs: oldInitramfs },
          manifest: { imageId: "x", planId: "y" },
        },
        () => undefined,
      ),
    ).rejects.toThrow(/refusing to write: slot "a" holds what syslinux boots by default/);

    // A 30 MB initramfs, and the ssh process killed a third of the way through it.
    const newKernel = file("new-vmlinuz", 400_000, 3);
    const newInitramfs = file("new-initramfs", 30 * 1024 * 1024, 4);
    let killedAt = 0;
    await expect(
      writeSlot(target, {
        slot: "b",
        files: { kernel: newKernel, initramfs: newInitramfs },
        manifest: { imageId: "new", planId: "p1" },
        onProgress: (role, done, total) => {
          if (role === "initramfs" && killedAt === 0 && done > total / 3) {
            killedAt = done;
            target.cancel();
          }
        },
      }),
    ).rejects.toThrow(/killed by SIGKILL|ssh failed/);
    expect(killedAt).toBeGreaterThan(0);
    expect(killedAt).toBeLessThan(30 * 1024 * 1024);
    // Let the remote side notice the cut stream and clean up.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await readSlot(target, "b")).toEqual(before);
    expect(sha(path.join(root, "b/vmlinuz"))).toBe(sha(oldKernel));
    expect(sha(path.join(root, "b/initramfs"))).toBe(sha(oldInitramfs));
    expect(await target.sha256("syslinux.cfg")).toBe(config.sha256);
    expect(fs.readdirSync(path.join(root, "b")).filter((n) => n.includes(".tmp-"))).toEqual([]);

    // The next write goes through, clears the leftovers, and reads back what was sent.
    const after = await writeSlot(target, {
      slot: "b",
      files: { kernel: newKernel, initramfs: newInitramfs },
      manifest: { imageId: "new", planId: "p1" },
    });
    expect(after.consistent).toBe(true);
    expect(after.files.initramfs?.sha256).toBe(sha(newInitramfs));
    expect(after.manifest?.imageId).toBe("new");
    expect(fs.readdirSync(path.join(root, "b")).sort()).toEqual(["initramfs", "manifest.json", "vmlinuz"]);

    // A hand edit shows on the next read.
    fs.appendFileSync(path.join(root, "b/vmlinuz"), "x");
    expect((await readSlot(target, "b"))?.consistent).toBe(false);

    // This machine was not booted by syslinux from this target: no running slot to refuse.
    const running = await runningSlotOf(target);
    const cmdline = fs.readFileSync("/proc/cmdline", "utf8");
    expect(running).toBe(/BOOT_IMAGE=\/?([^/\s]+)\//.exec(cmdline)?.[1]?.toLowerCase());
  } finally {
    await target.close();
  }
});
