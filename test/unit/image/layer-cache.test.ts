import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { LayerCache, concatenateLayers, DamagedLayerError } from "../../../provider/image/layer-cache";

let work: string;
beforeEach(() => (work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-layers-"))));
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const writing =
  (content: string, warnings: string[] = []) =>
  async (archive: string, dir: string) => {
    fs.writeFileSync(archive, content);
    fs.writeFileSync(path.join(dir, "vmlinuz"), "kernel");
    return { rawSize: content.length * 4, warnings };
  };

test("a layer is published under its key with its notes and side files, and found again", async () => {
  const cache = new LayerCache(path.join(work, "layers"));
  expect(cache.get("k1")).toBeUndefined();
  const put = await cache.put("k1", writing("AAAA", ["a warning"]));
  const got = cache.get("k1")!;
  expect(got).toEqual(put);
  expect(got).toMatchObject({ key: "k1", sha256: sha(Buffer.from("AAAA")), rawSize: 16, warnings: ["a warning"] });
  expect(fs.readFileSync(path.join(got.dir, "vmlinuz"), "utf8")).toBe("kernel");
  // no scratch directory is left behind
  expect(fs.readdirSync(path.join(work, "layers"))).toEqual(["k1"]);
});

test("the image is the layers one after the other, hashed on the way", async () => {
  const cache = new LayerCache(path.join(work, "layers"));
  const a = await cache.put("a", writing("first-"));
  const b = await cache.put("b", writing("second"));
  const out = path.join(work, "initramfs");
  const whole = await concatenateLayers([a, b], out);
  expect(fs.readFileSync(out, "utf8")).toBe("first-second");
  expect(whole).toEqual({ sha256: sha(Buffer.from("first-second")), size: 12 });
});

test("a layer whose archive changed since it was built is refused, and the partial image removed", async () => {
  const cache = new LayerCache(path.join(work, "layers"));
  const a = await cache.put("a", writing("first-"));
  fs.writeFileSync(a.archive, "tampered");
  const out = path.join(work, "initramfs");
  await expect(concatenateLayers([a], out)).rejects.toThrow(DamagedLayerError);
  expect(fs.existsSync(out)).toBe(false);
  cache.drop("a");
  expect(cache.get("a")).toBeUndefined();
});

test("two builds of one key: the first published stays, the second gets it", async () => {
  const cache = new LayerCache(path.join(work, "layers"));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slow = cache.put("k", async (archive, dir) => {
    await gate;
    return writing("same")(archive, dir);
  });
  const fast = await cache.put("k", writing("same"));
  release();
  const second = await slow;
  expect(second).toEqual(fast);
  expect(fs.readdirSync(path.join(work, "layers"))).toEqual(["k"]);
});

/** A build that hashes what it writes, as packArchive does. */
const writingHashed = (content: string) => async (archive: string) => {
  fs.writeFileSync(archive, content);
  return { rawSize: content.length, warnings: [], hash: createHash("sha256").update(content) };
};

test("a layer hashed as it was written is concatenated from that hash, and gives the same image", async () => {
  const cache = new LayerCache(path.join(work, "layers"));
  const a = await cache.put("a", writingHashed("first-"));
  const b = await cache.put("b", writingHashed("second"));
  expect(a.written).toBeDefined();
  expect(a.sha256).toBe(sha(Buffer.from("first-")));
  // the notes on disk hold no hash state; a later get() reads the archive again
  expect(cache.get("a")).toEqual({ ...a, written: undefined });
  const out = path.join(work, "initramfs");
  expect(await concatenateLayers([a, b], out)).toEqual({ sha256: sha(Buffer.from("first-second")), size: 12 });
  expect(fs.readFileSync(out, "utf8")).toBe("first-second");
  // the same layers found in the cache (read and hashed) give the same bytes and hash
  const fromCache = path.join(work, "initramfs-2");
  expect(await concatenateLayers([cache.get("a")!, cache.get("b")!], fromCache)).toEqual({
    sha256: sha(Buffer.from("first-second")),
    size: 12,
  });
});

test("a layer hashed as it was written but changed since is read again and refused", async () => {
  const cache = new LayerCache(path.join(work, "layers"));
  const a = await cache.put("a", writingHashed("first-"));
  // the stamp (device, inode, size, mtime, ctime) no longer matches
  fs.writeFileSync(a.archive, "tampered");
  const out = path.join(work, "initramfs");
  await expect(concatenateLayers([a], out)).rejects.toThrow(DamagedLayerError);
  expect(fs.existsSync(out)).toBe(false);
});
