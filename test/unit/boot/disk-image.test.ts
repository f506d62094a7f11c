import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import {
  ADV_MAGIC1,
  ADV_MAGIC3,
  advOfLdlinux,
  bootOnceOf,
  parseAdv,
  renderAdv,
  updateImageAdv,
  withAdvEntry,
  ADV_TAG_BOOTONCE,
} from "../../../provider/boot/schemes/syslinux/adv";
import { createDisk } from "../../../provider/boot/disk-create";
import { readMbrPartitions } from "../../../provider/boot/mbr";
import { openTarget } from "../../../provider/boot/target";
import { mtools } from "../../../provider/boot/mtools";

jest.setTimeout(60_000);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-disk-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

test("disk create is deterministic for one volume id and lays out MBR, active FAT partition, syslinux and slots", async () => {
  const opts = { sizeMiB: 32, layout: "mbr", slots: ["a", "b"], volumeId: 0x52414d52 } as const;
  const one = await createDisk({ ...opts, output: path.join(dir, "one.img"), slots: ["a", "b"] });
  const two = await createDisk({ ...opts, output: path.join(dir, "two.img"), slots: ["a", "b"] });
  expect(one.sha256).toBe(two.sha256);
  // Without a volume id each disk gets its own: its identity as a boot target (fat-volume-id.ts).
  const three = await createDisk({ ...opts, volumeId: undefined, output: path.join(dir, "three.img"), slots: ["a"] });
  expect(three.volumeId).not.toBe(one.volumeId);
  expect(one.fatOffset).toBe(2048 * 512);
  const sector0 = Buffer.alloc(512);
  const fd = fs.openSync(one.output, "r");
  fs.readSync(fd, sector0, 0, 512, 0);
  fs.closeSync(fd);
  // syslinux's mbr.bin is in the boot code area.
  expect(sector0.subarray(0, 64).equals(fs.readFileSync("/usr/lib/syslinux/mbr/mbr.bin").subarray(0, 64))).toBe(true);
  expect(readMbrPartitions(sector0)).toEqual([
    { number: 1, active: true, type: 0x0e, start: 2048, sectors: 32 * 2048 - 2048 },
  ]);
  const target = await openTarget({ kind: "image", path: one.output });
  try {
    expect(await target.list("")).toEqual(["a", "b", "ldlinux.c32", "ldlinux.sys"]);
    expect(target.describe()).toContain("FAT at byte 1048576");
  } finally {
    await target.close();
  }
  const floppy = await createDisk({
    output: path.join(dir, "floppy.img"),
    sizeMiB: 16,
    layout: "superfloppy",
    slots: ["a"],
  });
  expect(floppy.fatOffset).toBe(0);
  const ft = await openTarget({ kind: "image", path: floppy.output });
  expect(await ft.list("")).toEqual(["a", "ldlinux.c32", "ldlinux.sys"]);
  await ft.close();
  await expect(
    createDisk({ output: path.join(dir, "x.img"), sizeMiB: 4, layout: "mbr", slots: ["a"] }),
  ).rejects.toThrow(/sizeMiB: got 4; expected at least 8 MiB/);
  await expect(
    createDisk({ output: path.join(dir, "x.img"), sizeMiB: 16, layout: "gpt" as "mbr", slots: ["a"] }),
  ).rejects.toThrow(/layout: got "gpt"/);
});

test("image target: atomic verified copies, reads, lists, removes; a full disk keeps the old file", async () => {
  const { output } = await createDisk({
    output: path.join(dir, "t.img"),
    sizeMiB: 8,
    layout: "mbr",
    slots: ["a", "b"],
  });
  const target = await openTarget({ kind: "image", path: output, partition: 1 });
  try {
    await target.writeFileAtomic("a/vmlinuz", "kernel-one");
    expect((await target.readFile("a/vmlinuz"))?.toString()).toBe("kernel-one");
    await target.writeFileAtomic("a/vmlinuz", "kernel-two");
    expect(await target.sha256("a/vmlinuz")).toBe(sha("kernel-two"));
    await target.writeFileAtomic("c/deep/Manifest.json", "{}");
    expect(await target.list("c/deep")).toEqual(["Manifest.json"]);
    expect(await target.readFile("c")).toBeUndefined();
    expect(await target.readFile("nope")).toBeUndefined();
    await target.remove("c");
    expect(await target.list("")).not.toContain("c");
    // A lower-case 8.3 name (a layer's) keeps its case in the directory entry, as mdir lists it.
    await target.writeFileAtomic("layers/3f9c01ab.cd2", "a layer");
    await target.writeFileAtomic("layers/3f9c01ab.cd2", "a layer, again");
    const listed = await mtools("mdir", output, 1048576, ["-a", "-b", "::/layers"]);
    expect(listed.stdout.toString("utf8").trim().split("\n")).toEqual(["::/layers/3f9c01ab.cd2"]);
    await target.remove("layers");

    const big = path.join(dir, "big.bin");
    fs.writeFileSync(big, Buffer.alloc(12 * 1024 * 1024, 1));
    await expect(target.copyInAtomic("a/vmlinuz", big)).rejects.toThrow(/Disk full/i);
    expect((await target.readFile("a/vmlinuz"))?.toString()).toBe("kernel-two");
    expect(await target.list("a")).toEqual(["vmlinuz"]);
    await expect(target.readFile("a/*")).rejects.toThrow(/wildcards/);
  } finally {
    await target.close();
  }
  await expect(openTarget({ kind: "image", path: output, partition: 2 })).rejects.toThrow(
    /partition: got 2; .* has partitions 1/,
  );
});

test("ADV: render/parse with checksum; in-place update inside the image keeps ldlinux.sys's clusters", async () => {
  const adv = renderAdv([{ tag: ADV_TAG_BOOTONCE, data: Buffer.from("b") }]);
  expect(adv.readUInt32LE(0)).toBe(ADV_MAGIC1);
  expect(adv.readUInt32LE(508)).toBe(ADV_MAGIC3);
  expect(adv.subarray(0, 512).equals(adv.subarray(512))).toBe(true);
  expect(bootOnceOf(parseAdv(adv).entries)).toBe("b");
  const corrupt = Buffer.from(adv);
  corrupt[10] = 0x55; // first copy's checksum no longer matches: the second copy is used
  expect(bootOnceOf(parseAdv(corrupt).entries)).toBe("b");
  corrupt[512 + 10] = 0x55;
  expect(parseAdv(corrupt)).toEqual({ valid: false, entries: [] });

  const { output } = await createDisk({
    output: path.join(dir, "adv.img"),
    sizeMiB: 8,
    layout: "mbr",
    slots: ["a", "b"],
  });
  const target = await openTarget({ kind: "image", path: output });
  const before = (await target.readFile("ldlinux.sys"))!;
  expect(advOfLdlinux(before).valid).toBe(true);
  expect(bootOnceOf(advOfLdlinux(before).entries)).toBeUndefined();
  const entries = await updateImageAdv(output, undefined, (e) => withAdvEntry(e, ADV_TAG_BOOTONCE, Buffer.from("b")));
  expect(bootOnceOf(entries)).toBe("b");
  const after = (await target.readFile("ldlinux.sys"))!;
  // Only the two ADV sectors changed, and mtools sees the change through the filesystem.
  expect(after.length).toBe(before.length);
  expect(after.subarray(0, after.length - 1024).equals(before.subarray(0, before.length - 1024))).toBe(true);
  expect(bootOnceOf(advOfLdlinux(after).entries)).toBe("b");
  await target.close();
});

test("image target: reads list the FAT straight, under the image's lock: another writer's file is seen at once, and a read waits for the lock", async () => {
  const { output, fatOffset } = await createDisk({
    output: path.join(dir, "listing.img"),
    sizeMiB: 8,
    layout: "mbr",
    slots: ["a"],
  });
  // The real flock, through a wrapper on PATH that records each command it runs.
  const bin = fs.mkdtempSync(path.join(dir, "bin-"));
  const calls = path.join(bin, "calls.log");
  fs.writeFileSync(path.join(bin, "flock"), `#!/bin/sh\necho "$*" >> "${calls}"\nexec /usr/bin/flock "$@"\n`, {
    mode: 0o755,
  });
  const mtoolsReads = () =>
    fs.existsSync(calls)
      ? fs
          .readFileSync(calls, "utf8")
          .split("\n")
          .filter((l) => / (mdir|mcopy -n) /.test(l)).length
      : 0;
  const saved = process.env.PATH;
  process.env.PATH = `${bin}:${saved ?? ""}`;
  const reader = await openTarget({ kind: "image", path: output });
  const writer = await openTarget({ kind: "image", path: output });
  try {
    expect(await reader.list("a")).toEqual([]);
    expect(await reader.readFile("a/manifest.json")).toBeUndefined();
    // Another writer (here a second target, as another process would be): the next look sees
    // its file, however young the image's mtime.
    await writer.writeFileAtomic("a/manifest.json", "{}");
    expect(await reader.list("a")).toEqual(["manifest.json"]);
    expect((await reader.readFile("a/manifest.json"))?.toString()).toBe("{}");
    // Neither target read through mtools: listings and reads (the writer's read-back too) come from the FAT.
    expect(mtoolsReads()).toBe(0);
    // Another process holds the image's lock and writes under it: a read waits for the lock and sees the write.
    const src = path.join(dir, "late.txt");
    fs.writeFileSync(src, "late");
    const holder = (await import("node:child_process")).spawn(
      "/usr/bin/flock",
      [output, "sh", "-c", `echo held; sleep 1; mcopy -i "$1@@${fatOffset}" "$2" ::/a/late.txt`, "sh", output, src],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } },
    );
    const exited = new Promise<number | null>((resolve) => holder.once("close", resolve));
    await new Promise<void>((resolve) => holder.stdout.once("data", () => resolve()));
    expect(await reader.list("a")).toEqual(["late.txt", "manifest.json"]);
    expect((await reader.readFile("a/late.txt"))?.toString()).toBe("late");
    expect(await exited).toBe(0);
  } finally {
    process.env.PATH = saved;
    await reader.close();
    await writer.close();
  }
});

test("image target: a file is read from the image directly, fragmented or not, with the bytes mcopy gives", async () => {
  const { output, fatOffset } = await createDisk({
    output: path.join(dir, "direct.img"),
    sizeMiB: 8,
    layout: "mbr",
    slots: ["a"],
  });
  const big = Buffer.from(Array.from({ length: 1_500_000 }, (_, i) => (i * 7919) % 251));
  const writer = await openTarget({ kind: "image", path: output });
  try {
    // a/three fills the hole a/one leaves, then goes on after a/two: its clusters are not in one run.
    await writer.writeFileAtomic("a/one", Buffer.alloc(100_000, 1));
    await writer.writeFileAtomic("a/two", Buffer.alloc(100_000, 2));
    await writer.remove("a/one");
    await writer.writeFileAtomic("a/three", big);
    await writer.writeFileAtomic("Syslinux.cfg", "DEFAULT a\n");
    await writer.writeFileAtomic("empty", "");
  } finally {
    await writer.close();
  }
  const bin = fs.mkdtempSync(path.join(dir, "bin-"));
  const calls = path.join(bin, "calls.log");
  fs.writeFileSync(path.join(bin, "flock"), `#!/bin/sh\necho "$*" >> "${calls}"\nexec /usr/bin/flock "$@"\n`, {
    mode: 0o755,
  });
  const copies = () => (fs.existsSync(calls) ? fs.readFileSync(calls, "utf8").split(" mcopy ").length - 1 : 0);
  const saved = process.env.PATH;
  process.env.PATH = `${bin}:${saved ?? ""}`;
  const reader = await openTarget({ kind: "image", path: output });
  try {
    expect((await reader.readFile("a/three"))?.equals(big)).toBe(true);
    expect((await reader.readFile("a/two"))?.equals(Buffer.alloc(100_000, 2))).toBe(true);
    expect((await reader.readFile("syslinux.cfg"))?.toString()).toBe("DEFAULT a\n");
    expect((await reader.readFile("empty"))?.length).toBe(0);
    expect(await reader.readFile("a/one")).toBeUndefined();
    // Hashed in chunks from the same clusters; a capped read refuses a larger file.
    expect(await reader.sha256("a/three")).toBe(sha(big));
    expect(await reader.sha256("a/one")).toBeUndefined();
    expect(await reader.sha256("a")).toBeUndefined();
    await expect(reader.readFile("a/three", { maxBytes: 1000 })).rejects.toThrow(
      /a\/three is larger than the 1000 bytes read of it; refused/,
    );
    expect((await reader.readFile("a/two", { maxBytes: 100_000 }))?.length).toBe(100_000);
    expect(copies()).toBe(0);
    // mcopy gives the same bytes.
    const viaMcopy = await mtools("mcopy", output, fatOffset, ["-n", "::/a/three", "-"]);
    expect(viaMcopy.stdout.equals(big)).toBe(true);
  } finally {
    process.env.PATH = saved;
    await reader.close();
  }
});

test("image target: directories are listed straight from the image, with the names and kinds mdir shows", async () => {
  const { output, fatOffset } = await createDisk({
    output: path.join(dir, "names.img"),
    sizeMiB: 8,
    layout: "mbr",
    slots: ["a", "b"],
  });
  const writer = await openTarget({ kind: "image", path: output });
  const names = [
    "a/vmlinuz",
    "a/manifest.json",
    "UPPER.TXT",
    "mixedCase.cfg",
    "long file name.txt",
    "another long name.txt",
    "c/deep/x",
  ];
  try {
    for (const name of names) await writer.writeFileAtomic(name, name);
    await writer.rename("a/vmlinuz", "a/KERNEL");
  } finally {
    await writer.close();
  }
  // A tool that knows no long names renames a short entry: its long name is an orphan now (its
  // checksum no longer matches), and mdir shows the short name.
  const bytes = fs.readFileSync(output);
  const short = bytes.indexOf(Buffer.from("ANOTHE~1TXT", "latin1"));
  expect(short).toBeGreaterThan(0);
  Buffer.from("RENAMED TXT", "latin1").copy(bytes, short);
  fs.writeFileSync(output, bytes);
  const dirs = ["", "a", "b", "c", "c/deep", "nope", "UPPER.TXT"];
  const mdirNames = async (d: string) => {
    const r = await mtools("mdir", output, fatOffset, ["-a", "-b", `::/${d}`]);
    const lines =
      r.exitCode !== 0
        ? []
        : r.stdout
            .toString("utf8")
            .split("\n")
            .filter((l) => l.startsWith("::/"));
    return lines.map((l) => path.posix.basename(l.trim().replace(/\/$/, ""))).sort();
  };
  const expected = await Promise.all(dirs.map(mdirNames));
  const bin = fs.mkdtempSync(path.join(dir, "bin-"));
  const calls = path.join(bin, "calls.log");
  fs.writeFileSync(path.join(bin, "flock"), `#!/bin/sh\necho "$*" >> "${calls}"\nexec /usr/bin/flock "$@"\n`, {
    mode: 0o755,
  });
  const saved = process.env.PATH;
  process.env.PATH = `${bin}:${saved ?? ""}`;
  const reader = await openTarget({ kind: "image", path: output });
  try {
    expect(expected[0]).toEqual(
      [
        "a",
        "b",
        "c",
        "ldlinux.c32",
        "ldlinux.sys",
        "long file name.txt",
        "mixedCase.cfg",
        "renamed.txt",
        "upper.txt",
      ].sort(),
    );
    // mren leaves a short name without its case bits: MTOOLS_LOWER_CASE shows it in lower case.
    expect(expected[1]).toEqual(["kernel", "manifest.json"]);
    for (const [i, d] of dirs.entries()) {
      if (d === "UPPER.TXT") continue; // a file: list() answers [] without listing it
      expect(await reader.list(d)).toEqual(expected[i]);
    }
    expect(await reader.list("UPPER.TXT")).toEqual([]);
    expect(await reader.readFile("c/deep/x")).toEqual(Buffer.from("c/deep/x"));
    // Only the reader's lock holder ran flock (it unlocks by closing its file): no mdir, no mcopy.
    expect(new Set(fs.readFileSync(calls, "utf8").trim().split("\n"))).toEqual(new Set(["-w 600 9"]));
  } finally {
    process.env.PATH = saved;
    await reader.close();
  }
});
