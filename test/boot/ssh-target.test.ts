import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { openTarget, type TargetSpec } from "../../provider/boot/target";
import { findSyslinuxConfigPath } from "../../provider/boot/schemes/syslinux/config";
import { sshTarget, startSshd, type TestSshd } from "./sshd";

jest.setTimeout(120_000);

let sshd: TestSshd;
let root: string;
let spec: Extract<TargetSpec, { kind: "ssh" }>;
beforeAll(async () => {
  sshd = await startSshd();
  root = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sshroot-"));
  spec = sshTarget(sshd, root);
});
afterAll(async () => {
  await sshd?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

test("reads, writes atomically with read-back hashes, lists and removes over a real sshd", async () => {
  const target = await openTarget(spec);
  try {
    expect(target.describe()).toBe(`ssh root@127.0.0.1:${sshd.port}:${root}`);
    expect(target.describe()).not.toContain("PRIVATE");
    expect(await target.readFile("a/vmlinuz")).toBeUndefined();
    expect(await target.list("a")).toEqual([]);
    await target.writeFileAtomic("a/it's here.txt", "quoted");
    expect((await target.readFile("a/it's here.txt"))?.toString()).toBe("quoted");
    const src = path.join(sshd.dir, "payload");
    const bytes = Buffer.alloc(2 * 1024 * 1024 + 3, 9);
    fs.writeFileSync(src, bytes);
    const done: number[] = [];
    expect(await target.copyInAtomic("a/vmlinuz", src, (d) => done.push(d))).toBe(sha(bytes));
    expect(done[done.length - 1]).toBe(bytes.length);
    expect(await target.sha256("a/vmlinuz")).toBe(sha(bytes));
    expect(fs.readFileSync(path.join(root, "a/vmlinuz")).equals(bytes)).toBe(true);
    expect(await target.list("a")).toEqual(["it's here.txt", "vmlinuz"]);
    await target.remove("a/it's here.txt");
    expect(await target.list("a")).toEqual(["vmlinuz"]);
  } finally {
    await target.close();
  }
});

test("listMany and sha256Many read several directories and files at once, each as `list` and `sha256` give it; the config is found in syslinux's order", async () => {
  const where = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-sshlist-"));
  const target = await openTarget({ ...spec, path: where });
  try {
    fs.mkdirSync(path.join(where, "boot", "syslinux"), { recursive: true });
    fs.mkdirSync(path.join(where, "empty"));
    for (const f of ["boot/syslinux/ldlinux.sys", "boot/syslinux/SYSLINUX.CFG", "syslinux.cfg", "b's file"])
      fs.writeFileSync(path.join(where, f), "x");
    const dirs = ["", "boot/syslinux", "empty", "missing", "boot"];
    const together = await target.listMany!(dirs);
    const oneByOne: string[][] = [];
    for (const d of dirs) oneByOne.push(await target.list(d));
    expect(together).toEqual(oneByOne);
    // Hashes likewise: several files in one look, each as `sha256` gives it, a missing one undefined.
    const files = ["syslinux.cfg", "b's file", "missing", "boot/syslinux/ldlinux.sys"];
    const hashed = await target.sha256Many!(files);
    expect(hashed).toEqual(await Promise.all(files.map((f) => target.sha256(f))));
    expect(hashed[2]).toBeUndefined();
    expect(hashed[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(together).toEqual([
      ["b's file", "boot", "empty", "syslinux.cfg"],
      ["SYSLINUX.CFG", "ldlinux.sys"],
      [],
      [],
      ["syslinux"],
    ]);
    // Next to ldlinux.sys first (syslinux's loadconfig order), under its name as stored.
    expect(await findSyslinuxConfigPath(target)).toBe("boot/syslinux/SYSLINUX.CFG");
    fs.rmSync(path.join(where, "boot/syslinux/SYSLINUX.CFG"));
    expect(await findSyslinuxConfigPath(target)).toBe("syslinux.cfg");
  } finally {
    await target.close();
    fs.rmSync(where, { recursive: true, force: true });
  }
});

test("an unknown or changed host key is refused", async () => {
  await expect(openTarget({ ...spec, knownHostsFile: sshd.wrongKnownHosts })).rejects.toThrow(
    /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/,
  );
  const empty = path.join(sshd.dir, "known_hosts_empty");
  fs.writeFileSync(empty, "");
  await expect(openTarget({ ...spec, knownHostsFile: empty })).rejects.toThrow(/Host key verification failed/);
});

test("overwriteInPlace writes bytes at an offset of a file over the session's shell and reads them back; a file too short is refused", async () => {
  const target = await openTarget(spec);
  try {
    // Bytes of every value, as an ADV block holds them: the shell's framing must carry them all.
    const original = Buffer.alloc(4096, 0xaa);
    fs.writeFileSync(path.join(root, "ldlinux.sys"), original);
    const block = Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 7) % 256));
    await target.overwriteInPlace("ldlinux.sys", 2048, block);
    const after = fs.readFileSync(path.join(root, "ldlinux.sys"));
    expect(after.length).toBe(original.length);
    expect(after.subarray(2048, 3072).equals(block)).toBe(true);
    expect(after.subarray(0, 2048).equals(original.subarray(0, 2048))).toBe(true);
    expect(after.subarray(3072).equals(original.subarray(3072))).toBe(true);
    await expect(target.overwriteInPlace("ldlinux.sys", 4000, block)).rejects.toThrow(/shorter than the 5024 bytes/);
    expect(fs.readFileSync(path.join(root, "ldlinux.sys")).equals(after)).toBe(true);
  } finally {
    await target.close();
  }
});
