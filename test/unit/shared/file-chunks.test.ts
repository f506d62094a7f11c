import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { readChunks } from "../../../provider/file-chunks";
import { sha256File } from "../../../provider/file-hash";

let work: string;
beforeEach(() => (work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-chunks-"))));
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

test("a file over several chunks is read whole and in order, through one buffer; sha256File hashes exactly it", async () => {
  const bytes = randomBytes(2.5 * 2 ** 20 + 7);
  const file = path.join(work, "data");
  fs.writeFileSync(file, bytes);
  const copies: Buffer[] = [];
  const seen = new Set<ArrayBuffer | SharedArrayBuffer>();
  const total = await readChunks(file, (chunk) => {
    copies.push(Buffer.from(chunk));
    seen.add(chunk.buffer);
  });
  expect(total).toBe(bytes.length);
  expect(copies.map((c) => c.length)).toEqual([2 ** 20, 2 ** 20, 0.5 * 2 ** 20 + 7]);
  expect(Buffer.concat(copies).equals(bytes)).toBe(true);
  expect(seen.size).toBe(1);
  expect(await sha256File(file)).toBe(createHash("sha256").update(bytes).digest("hex"));
});

test("an empty file gives no chunk; a missing one is no hash", async () => {
  const empty = path.join(work, "empty");
  fs.writeFileSync(empty, "");
  const use = jest.fn();
  expect(await readChunks(empty, use)).toBe(0);
  expect(use).not.toHaveBeenCalled();
  expect(await sha256File(empty)).toBe(createHash("sha256").digest("hex"));
  expect(await sha256File(path.join(work, "missing"))).toBeUndefined();
  await expect(readChunks(path.join(work, "missing"), use)).rejects.toMatchObject({ code: "ENOENT" });
});

test("a range gives exactly its bytes, over several chunks; one past the end stops at the end", async () => {
  const bytes = randomBytes(3 * 2 ** 20);
  const file = path.join(work, "data");
  fs.writeFileSync(file, bytes);
  const read = async (start: number, length: number) => {
    const copies: Buffer[] = [];
    const total = await readChunks(file, (chunk) => void copies.push(Buffer.from(chunk)), { start, length });
    expect(total).toBe(Buffer.concat(copies).length);
    return Buffer.concat(copies);
  };
  expect((await read(12345, 2 ** 20 + 99)).equals(bytes.subarray(12345, 12345 + 2 ** 20 + 99))).toBe(true);
  expect((await read(0, 5)).equals(bytes.subarray(0, 5))).toBe(true);
  expect((await read(100, 0)).length).toBe(0);
  expect((await read(bytes.length - 10, 100)).equals(bytes.subarray(bytes.length - 10))).toBe(true);
});
