import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  cacheBoundFromEnv,
  DEFAULT_CACHE_MAX_BYTES,
  forgetStateReference,
  listImageCache,
  parseByteSize,
  pruneImageCache,
  recordStateReference,
  recordTreeBytes,
  stateReferences,
} from "../../../provider/image/cache-prune";
import { LayerCache } from "../../../provider/image/layer-cache";

let cache: string;
beforeEach(() => (cache = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-prune-"))));
afterEach(() => fs.rmSync(cache, { recursive: true, force: true }));

const key = (c: string) => c.repeat(64);
const KiB = 1024;

/** An image directory as build.ts publishes it: image.json naming its layers, an initramfs of `bytes`. */
function image(planId: string, bytes: number, usedSecondsAgo: number, layers: string[] = []): string {
  const dir = path.join(cache, planId);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "initramfs.gz"), Buffer.alloc(bytes));
  const notes = path.join(dir, "image.json");
  fs.writeFileSync(notes, JSON.stringify({ planId, layers: layers.map((k) => ({ key: k })) }));
  const t = new Date(Date.now() - usedSecondsAgo * 1000);
  fs.utimesSync(notes, t, t);
  return dir;
}

function layer(k: string, bytes: number, usedSecondsAgo: number): string {
  const dir = path.join(cache, "layers", k);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "layer.cpio"), Buffer.alloc(bytes));
  const notes = path.join(dir, "layer.json");
  fs.writeFileSync(notes, JSON.stringify({ sha256: "x", rawSize: bytes, warnings: [] }));
  const t = new Date(Date.now() - usedSecondsAgo * 1000);
  fs.utimesSync(notes, t, t);
  return dir;
}

test("sizes: bytes or K/M/G/T; anything else names the variable, the value and what is accepted", () => {
  expect(parseByteSize("123", "x")).toBe(123);
  expect(parseByteSize("500M", "x")).toBe(500 * 2 ** 20);
  expect(parseByteSize("1.5G", "x")).toBe(1.5 * 2 ** 30);
  expect(parseByteSize("8GiB", "x")).toBe(8 * 2 ** 30);
  expect(cacheBoundFromEnv({})).toBe(DEFAULT_CACHE_MAX_BYTES);
  expect(cacheBoundFromEnv({ RAMROOT_IMAGE_CACHE_MAX: "2g" })).toBe(2 * 2 ** 30);
  expect(() => cacheBoundFromEnv({ RAMROOT_IMAGE_CACHE_MAX: "lots" })).toThrow(
    'RAMROOT_IMAGE_CACHE_MAX: got "lots"; expected a size in bytes, or with a unit K, M, G or T',
  );
});

test("over the bound, the least recently used entries go first, until it fits", () => {
  image(key("a"), 40 * KiB, 300);
  image(key("b"), 40 * KiB, 100);
  layer(key("c"), 40 * KiB, 200);
  image(key("d"), 40 * KiB, 10);
  // every entry also holds its small notes file: 4 x 40 KiB + notes; a 100 KiB bound keeps two
  const result = pruneImageCache({ cacheDir: cache, maxBytes: 100 * KiB });
  expect(result.removed.map((e) => `${e.kind} ${e.name[0]}`)).toEqual(["image a", "layer c"]);
  expect(fs.existsSync(path.join(cache, key("a")))).toBe(false);
  expect(fs.existsSync(path.join(cache, "layers", key("c")))).toBe(false);
  expect(fs.existsSync(path.join(cache, key("b"), "initramfs.gz"))).toBe(true);
  expect(result.bytesAfter).toBeLessThanOrEqual(100 * KiB);
  expect(result.bytesBefore - result.bytesAfter).toBe(result.removed.reduce((n, e) => n + e.bytes, 0));
  // nothing half-removed is left beside the entries
  expect(fs.readdirSync(cache).filter((n) => n.startsWith("."))).toEqual([]);
  // under the bound: nothing more goes
  expect(pruneImageCache({ cacheDir: cache, maxBytes: 100 * KiB }).removed).toEqual([]);
});

test("never removed: the image asked to be kept, an image a stack's state names, and their layers", () => {
  image(key("a"), 40 * KiB, 500, [key("1")]);
  layer(key("1"), 40 * KiB, 500);
  image(key("b"), 40 * KiB, 400, [key("2")]);
  layer(key("2"), 40 * KiB, 400);
  image(key("c"), 40 * KiB, 300);
  recordStateReference(cache, "urn:pulumi:nas::home::ramroot:index:AlpineImage::image", key("b"));
  expect(stateReferences(cache).get(key("b"))).toEqual(["urn:pulumi:nas::home::ramroot:index:AlpineImage::image"]);

  const listed = listImageCache(cache, [key("a")]);
  const why = Object.fromEntries(listed.map((e) => [`${e.kind} ${e.name[0]}`, e.kept]));
  expect(why).toEqual({
    "image a": "asked to be kept",
    "image b": "named by the state of urn:pulumi:nas::home::ramroot:index:AlpineImage::image",
    "image c": undefined,
    "layer 1": `a layer of kept image ${key("a").slice(0, 12)}`,
    "layer 2": `a layer of kept image ${key("b").slice(0, 12)}`,
  });

  // a bound of zero removes everything else, however old the kept ones are
  const result = pruneImageCache({ cacheDir: cache, maxBytes: 0, keep: [key("a")] });
  expect(result.removed.map((e) => e.name[0])).toEqual(["c"]);
  expect(result.bytesAfter).toBe(result.keptBytes);
  for (const dir of [key("a"), key("b"), path.join("layers", key("1")), path.join("layers", key("2"))])
    expect(fs.existsSync(path.join(cache, dir))).toBe(true);
});

test("a state reference follows the resource: replaced when it names another image, gone with the resource", () => {
  const urn = "urn:pulumi:demo::ramroot::ramroot:index:AlpineImage::demo-image";
  image(key("a"), 10 * KiB, 200);
  image(key("b"), 10 * KiB, 100);
  recordStateReference(cache, urn, key("a"));
  recordStateReference(cache, urn, key("b")); // the update: the state now names b
  expect([...stateReferences(cache).keys()]).toEqual([key("b")]);
  expect(pruneImageCache({ cacheDir: cache, maxBytes: 0 }).removed.map((e) => e.name[0])).toEqual(["a"]);
  forgetStateReference(cache, urn); // the resource deleted
  expect(stateReferences(cache).size).toBe(0);
  expect(pruneImageCache({ cacheDir: cache, maxBytes: 0 }).removed.map((e) => e.name[0])).toEqual(["b"]);
});

test("a layer found in the cache counts as used now, so it outlives older ones", async () => {
  const layers = new LayerCache(path.join(cache, "layers"));
  for (const c of ["e", "f"])
    await layers.put(key(c), async (archive) => {
      fs.writeFileSync(archive, Buffer.alloc(40 * KiB));
      return { rawSize: 40 * KiB, warnings: [] };
    });
  const old = new Date(Date.now() - 1000_000);
  for (const c of ["e", "f"]) fs.utimesSync(path.join(cache, "layers", key(c), "layer.json"), old, old);
  expect(layers.get(key("e"))).toBeDefined(); // a build reuses e
  const result = pruneImageCache({ cacheDir: cache, maxBytes: 50 * KiB });
  expect(result.removed.map((e) => e.name[0])).toEqual(["f"]);
  expect(layers.get(key("e"))).toBeDefined();
});

test("an installed tree is counted by the size recorded when it was put back, walked only without a record", () => {
  const dir = path.join(cache, "trees", key("e"));
  fs.mkdirSync(path.join(dir, "root", "usr", "lib"), { recursive: true });
  fs.writeFileSync(path.join(dir, "root", "usr", "lib", "libx.so"), Buffer.alloc(30 * KiB));
  fs.writeFileSync(path.join(dir, "state.json"), "{}");
  const walked = 30 * KiB + 2;
  const treeBytes = () => listImageCache(cache).find((e) => e.kind === "tree")!.bytes;
  expect(treeBytes()).toBe(walked);
  recordTreeBytes(dir);
  expect(JSON.parse(fs.readFileSync(path.join(dir, "bytes.json"), "utf8"))).toEqual({ bytes: walked });
  // the listing takes the record as it is: a file added behind the build's back is not seen
  fs.writeFileSync(path.join(dir, "root", "extra"), Buffer.alloc(10 * KiB));
  expect(treeBytes()).toBe(walked);
  // an unreadable record is walked again (the record itself counted)
  fs.writeFileSync(path.join(dir, "bytes.json"), "{");
  expect(treeBytes()).toBe(walked + 10 * KiB + 1);
  expect(pruneImageCache({ cacheDir: cache, maxBytes: 0 }).removed.map((e) => e.kind)).toEqual(["tree"]);
});
