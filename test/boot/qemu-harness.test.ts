import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bootQemu } from "../../provider/qemu/boot";
import { debianKernel } from "../fixtures/debian-kernel";
import { makeBusyboxInitramfs, markerInit } from "../fixtures/busybox-initramfs";

// QEMU runs without KVM here: a busybox initramfs takes a few seconds to reach its marker.
jest.setTimeout(300_000);

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-qemu-"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test("boots a Debian kernel with a busybox initramfs and sees the marker", async () => {
  const kernel = debianKernel();
  const initrd = makeBusyboxInitramfs({ init: markerInit("RAMROOT-HARNESS-OK"), output: path.join(work, "ok.img") });
  const result = await bootQemu({
    media: { kind: "kernel", kernel: kernel.vmlinuz, initrd, append: "rdinit=/sbin/init quiet" },
    marker: "RAMROOT-HARNESS-OK",
    timeoutMs: 120_000,
  });
  expect(result.reason).toBe("marker");
  expect(result.found).toBe(true);
  expect(result.log).toContain("RAMROOT-HARNESS-OK");
});

test("an init that panics ends the run without the marker, and the log says why", async () => {
  const kernel = debianKernel();
  // init exits: the kernel panics ("Attempted to kill init"), panic=-1 reboots, -no-reboot ends QEMU.
  const initrd = makeBusyboxInitramfs({
    init: "#!/bin/sh\necho about-to-die\nexit 1\n",
    output: path.join(work, "panic.img"),
  });
  const result = await bootQemu({
    media: { kind: "kernel", kernel: kernel.vmlinuz, initrd, append: "rdinit=/sbin/init" },
    marker: "NEVER-PRINTED",
    timeoutMs: 120_000,
  });
  expect(result.found).toBe(false);
  expect(result.reason).toBe("exit");
  expect(result.log).toContain("about-to-die");
  expect(result.log).toMatch(/Kernel panic/);
});

test("a marker that never comes times out", async () => {
  const kernel = debianKernel();
  const initrd = makeBusyboxInitramfs({
    init: "#!/bin/sh\necho waiting\nwhile true; do sleep 1; done\n",
    output: path.join(work, "hang.img"),
  });
  const result = await bootQemu({
    media: { kind: "kernel", kernel: kernel.vmlinuz, initrd, append: "rdinit=/sbin/init" },
    marker: "NEVER-PRINTED",
    timeoutMs: 15_000,
  });
  expect(result.found).toBe(false);
  expect(result.reason).toBe("timeout");
});
