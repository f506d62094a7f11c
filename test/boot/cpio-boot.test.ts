import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { PassThrough } from "node:stream";
import { writeCpio, type CpioEntry } from "../../provider/image/cpio-writer";
import { expectImageHolds } from "../fixtures/image-readback";
import { bootQemu } from "../../provider/qemu/boot";
import { debianKernel } from "../fixtures/debian-kernel";
import { BUSYBOX, markerInit } from "../fixtures/busybox-initramfs";

jest.setTimeout(300_000);

test("the kernel unpacks an initramfs from ramroot's newc writer and runs its init", async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-cpioboot-"));
  try {
    const dir = (p: string): CpioEntry => ({ path: p, type: "dir", mode: 0o755, uid: 0, gid: 0 });
    const entries: CpioEntry[] = [
      dir("bin"),
      dir("sbin"),
      dir("proc"),
      dir("sys"),
      dir("dev"),
      dir("etc"),
      { path: "bin/busybox", type: "file", mode: 0o755, uid: 0, gid: 0, source: BUSYBOX },
      { path: "bin/sh", type: "symlink", mode: 0o777, uid: 0, gid: 0, linkTarget: "busybox" },
      { path: "dev/console", type: "char", mode: 0o600, uid: 0, gid: 0, rdevMajor: 5, rdevMinor: 1 },
      { path: "etc/motd", type: "file", mode: 0o644, uid: 0, gid: 0, source: Buffer.from("from-our-writer\n") },
      {
        path: "sbin/init",
        type: "file",
        mode: 0o755,
        uid: 0,
        gid: 0,
        source: Buffer.from(markerInit("NEWC-$(cat /etc/motd)")),
      },
    ];
    const initrd = path.join(work, "initramfs.gz");
    const sink = new PassThrough();
    const gz = zlib.createGzip({ level: 6 });
    const done = new Promise<void>((resolve, reject) =>
      sink.pipe(gz).pipe(fs.createWriteStream(initrd)).on("finish", resolve).on("error", reject),
    );
    await writeCpio(entries, sink, { epoch: 0 });
    sink.end();
    await done;
    await expectImageHolds(initrd, entries);
    const result = await bootQemu({
      media: { kind: "kernel", kernel: debianKernel().vmlinuz, initrd, append: "rdinit=/sbin/init quiet" },
      marker: "NEWC-from-our-writer",
    });
    expect(result.found).toBe(true);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
