import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { writeCpio, type CpioEntry } from "../../provider/image/cpio-writer";
import { compressor, type Compression } from "../../provider/image/compress";
import { bootQemu } from "../../provider/qemu/boot";
import { debianKernel } from "../fixtures/debian-kernel";
import { BUSYBOX } from "../fixtures/busybox-initramfs";
import { expectImageHolds, readBack } from "../fixtures/image-readback";
import { createHash } from "node:crypto";

// The facts the layered image (provider/image/layers.ts) stands on, checked on a real kernel:
// it unpacks an initramfs made of separately compressed cpio archives one after the other, and
// a later archive's entry replaces an earlier one at the same path. Also the two cases that
// cannot be layered, which is why the builder folds them into one archive instead.
jest.setTimeout(600_000);

const dir = (p: string, mode = 0o755): CpioEntry => ({ path: p, type: "dir", mode, uid: 0, gid: 0 });
const file = (p: string, content: string, extra: Partial<CpioEntry> = {}): CpioEntry => ({
  path: p,
  type: "file",
  mode: 0o644,
  uid: 0,
  gid: 0,
  source: Buffer.from(content),
  ...extra,
});
const link = (p: string, target: string): CpioEntry => ({
  path: p,
  type: "symlink",
  mode: 0o777,
  uid: 0,
  gid: 0,
  linkTarget: target,
});

const REPORT = [
  "a=$(cat /etc/a)",
  "h2=$(cat /etc/h2)",
  "hl=$(stat -c %h /etc/h1)",
  "n=$(cat /etc/n2)",
  "nsame=$([ $(stat -c %i /etc/n1) = $(stat -c %i /etc/n2) ] && echo yes || echo no)",
  "nlinks=$(stat -c %h /etc/n1)",
  "f2l=$(readlink /etc/f2l)",
  "l2f=$(cat /etc/l2f)",
  "mode=$(stat -c %a /etc/mode)",
  "owner=$(stat -c %u:%g /etc/mode)",
  "p1=$(cat /etc/p1)",
  "p2=$(cat /etc/p2)",
  "full=$(if [ -d /etc/full ]; then echo dir:$(cat /etc/full/x); else cat /etc/full; fi)",
  "empty=$(if [ -d /etc/empty ]; then echo dir; else cat /etc/empty; fi)",
  "dnew=$(cat /etc/d/new)",
  "dmode=$(stat -c %a /etc/d)",
].join(" ");

const INIT = [
  "#!/bin/sh",
  "/bin/busybox mount -t proc proc /proc",
  "/bin/busybox --install -s /bin",
  `echo "LAYERS ${REPORT} END"`,
  "poweroff -f",
  "",
].join("\n");

/** Three archives, each replacing some of what the ones before it hold. */
const LAYERS: CpioEntry[][] = [
  [
    dir("bin"),
    dir("sbin"),
    dir("proc"),
    dir("sys"),
    dir("dev"),
    dir("etc"),
    dir("etc/d"),
    dir("etc/full"),
    dir("etc/empty"),
    { path: "bin/busybox", type: "file", mode: 0o755, uid: 0, gid: 0, source: BUSYBOX },
    link("bin/sh", "busybox"),
    { path: "dev/console", type: "char", mode: 0o600, uid: 0, gid: 0, rdevMajor: 5, rdevMinor: 1 },
    file("sbin/init", INIT, { mode: 0o755 }),
    file("etc/a", "a1"),
    file("etc/h1", "h1", { hardLinkKey: "h" }),
    file("etc/h2", "h1", { hardLinkKey: "h" }),
    file("etc/p1", "p-old", { hardLinkKey: "p" }),
    file("etc/p2", "p-old", { hardLinkKey: "p" }),
    file("etc/f2l", "was-a-file"),
    link("etc/l2f", "a"),
    file("etc/mode", "m", { mode: 0o600, uid: 7, gid: 7 }),
    file("etc/full/x", "x"),
  ],
  [
    file("etc/a", "a2"),
    file("etc/n1", "n", { hardLinkKey: "n" }),
    file("etc/n2", "n", { hardLinkKey: "n" }),
    link("etc/f2l", "a"),
    file("etc/l2f", "now-a-file"),
    file("etc/mode", "m", { mode: 0o755 }),
    // one name of an earlier hard-link pair, replaced
    file("etc/p1", "p-new"),
  ],
  [
    dir("etc/d", 0o700),
    file("etc/a", "a3"),
    file("etc/d/new", "dnew"),
    // a file where an earlier archive has a directory, with and without children
    file("etc/full", "file-over-dir"),
    file("etc/empty", "file-over-empty-dir"),
  ],
];

async function writeLayered(out: string, compression: Compression): Promise<void> {
  const parts: Buffer[] = [];
  for (const [i, entries] of LAYERS.entries()) {
    const layer = `${out}.${i}`;
    const raw = new PassThrough();
    const c = compressor(compression);
    const done = c ? pipeline(raw, c, fs.createWriteStream(layer)) : pipeline(raw, fs.createWriteStream(layer));
    await writeCpio(entries, raw, { epoch: 1700000000 });
    raw.end();
    await done;
    // each archive alone reads back (cpio-stream) as the entries it was written from
    await expectImageHolds(layer, entries);
    parts.push(fs.readFileSync(layer));
  }
  // each archive is its own compressed stream, appended to the ones before it
  fs.writeFileSync(out, Buffer.concat(parts));
}

describe.each<Compression>(["gzip", "zstd", "none"])("a %s initramfs of three concatenated archives", (compression) => {
  test("later archives replace earlier entries; hard links within an archive hold; what cannot be layered is shown", async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-layers-"));
    try {
      const initrd = path.join(work, "initramfs");
      await writeLayered(initrd, compression);
      // cpio-stream's reading (initramfs-reader.ts) folds the archives as the kernel does below
      const tree = await readBack(initrd);
      const holds = (p: string) => tree.get(p)?.sha256;
      const sha = (t: string) => createHash("sha256").update(t).digest("hex");
      expect([holds("etc/a"), holds("etc/p1"), holds("etc/p2"), holds("etc/l2f"), holds("etc/empty")]).toEqual([
        sha("a3"),
        sha("p-new"),
        sha("p-new"),
        sha("now-a-file"),
        sha("file-over-empty-dir"),
      ]);
      expect([
        tree.get("etc/f2l")?.linkTarget,
        tree.get("etc/full")?.type,
        tree.get("etc/d")?.mode,
        tree.get("etc/mode")?.mode,
        tree.get("etc/mode")?.uid,
      ]).toEqual(["a", "dir", 0o700, 0o755, 0]);
      const result = await bootQemu({
        media: { kind: "kernel", kernel: debianKernel().vmlinuz, initrd, append: "rdinit=/sbin/init quiet" },
        marker: " END",
        timeoutMs: 240_000,
      });
      const line = /LAYERS (.*) END/.exec(result.log)?.[1];
      if (!line) console.log(result.log.slice(-3000));
      const seen = Object.fromEntries(line!.split(" ").map((kv) => kv.split("=") as [string, string]));
      expect(seen).toEqual({
        a: "a3", // the last archive wins
        h2: "h1",
        hl: "2", // a hard link inside the first archive
        n: "n",
        nsame: "yes",
        nlinks: "2", // a hard link inside a later archive
        f2l: "a", // a file replaced by a symlink
        l2f: "now-a-file", // a symlink replaced by a file
        mode: "755",
        owner: "0:0", // a replaced file takes the later entry's mode and owner
        p1: "p-new",
        // The kernel opens an existing file with O_TRUNC: replacing one name of an earlier hard
        // link rewrites the shared inode, so the other name changes too. Not layerable.
        p2: "p-new",
        // A file cannot replace a directory that has children (the kernel's rmdir fails and
        // the file is dropped); an empty directory is replaced. Not layerable.
        full: "dir:x",
        empty: "file-over-empty-dir",
        dnew: "dnew",
        dmode: "700", // a later directory entry sets the mode of an existing one
      });
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
