import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { createHash, randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { writeCpio, type CpioEntry } from "../../../provider/image/cpio-writer";
import { packArchive } from "../../../provider/image/pack-archive";

const EPOCH = 1_700_000_000;

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-pack-"));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** Files of distinct content, 13 MiB in all: many 1 MiB chunks, so a reused chunk holding stale bytes would show. */
function tree(): CpioEntry[] {
  const entries: CpioEntry[] = [{ path: "data", type: "dir", mode: 0o755, uid: 0, gid: 0 }];
  for (let i = 0; i < 12; i++) {
    const file = path.join(work, `f${i}`);
    fs.writeFileSync(file, randomBytes(1_100_000 + i * 4099));
    entries.push({ path: `data/f${i}`, type: "file", mode: 0o644, uid: 0, gid: 0, source: file });
  }
  return entries;
}

/** The archive as the writer makes it into a plain stream (no chunk reused). */
async function reference(entries: CpioEntry[]): Promise<Buffer> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on("data", (c: Buffer) => chunks.push(c));
  await writeCpio(entries, sink, { epoch: EPOCH });
  sink.end();
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

test("uncompressed, chunks reused once written: the same bytes as the plain writer, hashed as written", async () => {
  const entries = tree();
  const want = await reference(entries);
  const out = path.join(work, "layer.cpio");
  const packed = await packArchive(entries, out, "none", 0, EPOCH, () => {});
  const got = fs.readFileSync(out);
  expect(got.length).toBe(want.length);
  expect(got.equals(want)).toBe(true);
  expect(packed.rawSize).toBe(want.length);
  expect(packed.hash.digest("hex")).toBe(sha256(got));
});

test("gzip: the file inflates to the same archive and its hash is of the compressed bytes", async () => {
  const entries = tree();
  const want = await reference(entries);
  const out = path.join(work, "layer.cpio.gz");
  const packed = await packArchive(entries, out, "gzip", 6, EPOCH, () => {});
  const got = fs.readFileSync(out);
  expect(zlib.gunzipSync(got).equals(want)).toBe(true);
  expect(packed.rawSize).toBe(want.length);
  expect(packed.hash.digest("hex")).toBe(sha256(got));
});

test.each(["none", "gzip"] as const)("%s: a file that cannot be read fails the pack (no hang)", async (kind) => {
  const entries = tree();
  entries.push({ path: "data/gone", type: "file", mode: 0o644, uid: 0, gid: 0, source: path.join(work, "missing") });
  await expect(packArchive(entries, path.join(work, `bad-${kind}`), kind, 6, EPOCH, () => {})).rejects.toThrow(
    /missing/,
  );
});
