/**
 * Device nodes and FIFOs a package ships are kept in the image: they are recorded from the data
 * tar (never made on disk in the staging tree) and packed from the manifest.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { expandDataTar, type FileManifest } from "../../provider/apk/expand";
import { collectEntries } from "../../provider/image/tree-entries";

test("a char device, a block device and a FIFO from a package's data tar reach the archive entries with their numbers, modes and owners", async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sec-dev-"));
  try {
    const tree = path.join(work, "tree");
    fs.mkdirSync(path.join(tree, "dev"), { recursive: true });
    execFileSync("mkfifo", ["-m", "620", path.join(tree, "dev/initctl")]);
    const root = process.getuid?.() === 0;
    if (root) {
      execFileSync("mknod", ["-m", "660", path.join(tree, "dev/ttyS9"), "c", "4", "73"]);
      execFileSync("mknod", ["-m", "640", path.join(tree, "dev/loop9"), "b", "7", "9"]);
      execFileSync("chown", ["0:5", path.join(tree, "dev/ttyS9")]);
    }
    // GNU tar writes what apk packages hold: ustar entries of type 3, 4 and 6.
    const tar = execFileSync("tar", ["--format=ustar", "--numeric-owner", "-cf", "-", "-C", tree, "."]);
    const staging = path.join(work, "root");
    fs.mkdirSync(staging);
    const manifest: FileManifest = new Map();
    await expandDataTar(tar, { root: staging, manifest, packageName: "devs", source: "devs.apk" });
    // Nothing was made on disk for them
    expect(fs.existsSync(path.join(staging, "dev/initctl"))).toBe(false);
    const entries = new Map(collectEntries(staging, manifest, new Set()).map((e) => [e.path, e]));
    expect(entries.get("dev/initctl")).toMatchObject({ type: "fifo", mode: 0o620 });
    if (root) {
      expect(entries.get("dev/ttyS9")).toMatchObject({
        type: "char",
        mode: 0o660,
        uid: 0,
        gid: 5,
        rdevMajor: 4,
        rdevMinor: 73,
      });
      expect(entries.get("dev/loop9")).toMatchObject({ type: "block", mode: 0o640, rdevMajor: 7, rdevMinor: 9 });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
