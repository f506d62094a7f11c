import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { slotOfBootPath, writeSlot } from "../../../provider/boot/slot";
import { openTarget, parseTargetSpec } from "../../../provider/boot/target";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-local-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

test("writes, copies in, hashes, lists and removes, leaving no temporary files", async () => {
  const target = await openTarget({ kind: "local", path: dir });
  expect(target.describe()).toBe(`local ${dir}`);
  expect(await target.readFile("a/vmlinuz")).toBeUndefined();
  expect(await target.sha256("a/vmlinuz")).toBeUndefined();
  expect(await target.list("a")).toEqual([]);

  await target.writeFileAtomic("a/manifest.json", '{"x":1}');
  expect((await target.readFile("a/manifest.json"))?.toString()).toBe('{"x":1}');

  const source = path.join(dir, "..", `${path.basename(dir)}-src`);
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
  fs.writeFileSync(source, bytes);
  const progress: number[] = [];
  const hash = await target.copyInAtomic("a/vmlinuz", source, (done) => progress.push(done));
  fs.rmSync(source);
  expect(hash).toBe(sha(bytes));
  expect(await target.sha256("a/vmlinuz")).toBe(sha(bytes));
  expect(progress[0]).toBe(0);
  expect(progress[progress.length - 1]).toBe(bytes.length);
  expect(await target.list("a")).toEqual(["manifest.json", "vmlinuz"]);

  await target.remove("a");
  await target.remove("a");
  expect(await target.list("")).toEqual([]);
});

test("refuses paths outside the root and bad specs, naming field and value", async () => {
  const target = await openTarget({ kind: "local", path: dir });
  await expect(target.readFile("../etc/passwd")).rejects.toThrow(
    /got "..\/etc\/passwd"; expected a path inside the target root/,
  );
  await expect(target.remove("")).rejects.toThrow(/refusing to remove the target root/);
  await expect(openTarget({ kind: "local", path: path.join(dir, "nope") })).rejects.toThrow(/does not exist/);
  expect(() => parseTargetSpec({ kind: "floppy", path: "/x" })).toThrow(/kind/);
  expect(() => parseTargetSpec({ kind: "ssh", host: "-oProxyCommand=x", path: "/boot" })).toThrow(
    /host: got "-oProxyCommand=x"/,
  );
  expect(() => parseTargetSpec({ kind: "ssh", host: "nas", path: "/boot", port: 70000 })).toThrow(
    /port: got 70000; expected a TCP port 1-65535/,
  );
  expect(() => parseTargetSpec({ kind: "ssh", host: "nas", path: "/boot", privateKey: "hunter2" })).toThrow(
    /privateKey: got a secret of 7 characters/,
  );
  expect(() => parseTargetSpec({ kind: "image", path: "d.img", partition: 5 })).toThrow(
    /partition: got 5; expected an MBR partition number 1-4/,
  );
});

test("a failed write leaves the old file and no temporary file", async () => {
  const target = await openTarget({ kind: "local", path: dir });
  await target.writeFileAtomic("syslinux.cfg", "old");
  // A directory where the source should be: reading it fails midway through the copy.
  await expect(target.copyInAtomic("syslinux.cfg", dir)).rejects.toThrow();
  expect((await target.readFile("syslinux.cfg"))?.toString()).toBe("old");
  expect(await target.list("")).toEqual(["syslinux.cfg"]);
});

test("slot paths resolved like syslinux does; a slot write validates its name and records what it wrote", async () => {
  expect(slotOfBootPath("/b/vmlinuz", "syslinux.cfg")).toBe("b");
  expect(slotOfBootPath("b/vmlinuz", "syslinux.cfg")).toBe("b");
  expect(slotOfBootPath("../a/vmlinuz", "boot/syslinux/syslinux.cfg")).toBe("boot");
  expect(slotOfBootPath("vmlinuz", "syslinux.cfg")).toBeUndefined();
  const target = await openTarget({ kind: "local", path: dir });
  const k = path.join(dir, "..", `${path.basename(dir)}-k`);
  fs.writeFileSync(k, "kernel");
  try {
    await expect(
      writeSlot(target, { slot: "B/x", files: { kernel: k, initramfs: k }, manifest: { imageId: "i", planId: "p" } }),
    ).rejects.toThrow(/slot: got "B\/x"/);
    const state = await writeSlot(target, {
      slot: "b",
      files: { kernel: k, initramfs: k },
      manifest: { imageId: "i", planId: "p", when: "2020-01-01T00:00:00Z" },
    });
    expect(state.files.kernel?.sha256).toBe(sha("kernel"));
    expect(state.manifest?.files.initramfs?.size).toBe(6);
  } finally {
    fs.rmSync(k);
  }
});
