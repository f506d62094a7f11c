import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { compressor, COMPRESSION_LEVELS, type Compression } from "../../../provider/image/compress";
import { ParallelGzip } from "../../../provider/image/parallel-gzip";
import { parseImageConfig } from "../../../provider/image/plan";

// zstd -19 over 24 MiB takes seconds on a shared machine; no wall-clock limit is meant here.
jest.setTimeout(300_000);

// 24 MiB of mixed data: large enough for zstd to split the work between threads.
const input = Buffer.concat([fs.readFileSync("/bin/busybox"), crypto.randomBytes(4 << 20), Buffer.alloc(18 << 20, 7)]);

async function compress(kind: Compression, out: string, level?: number): Promise<Buffer> {
  await pipeline(Readable.from([input]), compressor(kind, level)!, fs.createWriteStream(out));
  return fs.readFileSync(out);
}

let work: string;
beforeAll(() => (work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-compress-"))));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test.each(["gzip", "zstd"] as Compression[])(
  "%s: same input, same bytes, and the standard tool gives the input back",
  async (kind) => {
    const a = await compress(kind, path.join(work, `a.${kind}`));
    const b = await compress(kind, path.join(work, `b.${kind}`));
    expect(a.length).toBeGreaterThan(0);
    expect(a.equals(b)).toBe(true);
    const back = execFileSync(kind === "gzip" ? "gzip" : "zstd", ["-d", "-c", path.join(work, `a.${kind}`)], {
      maxBuffer: 64 << 20,
    });
    expect(back.equals(input)).toBe(true);
  },
);

test("gzip's header has no name and no time", async () => {
  const gz = await compress("gzip", path.join(work, "h.gz"));
  expect(gz.readUInt32LE(4)).toBe(0); // MTIME
  expect(gz[3]! & 0x08).toBe(0); // FNAME flag
});

test("zstd's output does not depend on the number of threads", () => {
  const file = path.join(work, "in.bin");
  fs.writeFileSync(file, input);
  const one = execFileSync("zstd", ["-19", "-T1", "-q", "-c", file], { maxBuffer: 64 << 20 });
  const two = execFileSync("zstd", ["-19", "-T2", "-q", "-c", file], { maxBuffer: 64 << 20 });
  expect(one.equals(two)).toBe(true);
});

test("parallel gzip: the same bytes whatever the parallelism, one member any gunzip reads", async () => {
  const run = async (parallelism: number) => {
    const out: Buffer[] = [];
    // uneven chunks, as the cpio writer produces them
    const parts: Buffer[] = [];
    for (let at = 0, i = 0; at < input.length; i++) {
      const n = [110, 65536, 7, 1 << 20][i % 4]!;
      parts.push(input.subarray(at, at + n));
      at += n;
    }
    await pipeline(
      Readable.from(parts),
      new ParallelGzip(9, parallelism),
      async function* (src: AsyncIterable<unknown>) {
        for await (const c of src) {
          if (!Buffer.isBuffer(c)) throw new Error("gzip produced a non-Buffer chunk");
          out.push(c);
        }
      },
    );
    return Buffer.concat(out);
  };
  const one = await run(1);
  const four = await run(4);
  expect(one.equals(four)).toBe(true);
  const file = path.join(work, "p.gz");
  fs.writeFileSync(file, one);
  execFileSync("gzip", ["-t", file]);
  expect(execFileSync("gzip", ["-d", "-c", file], { maxBuffer: 64 << 20 }).equals(input)).toBe(true);
  expect(execFileSync("gzip", ["-l", file], { encoding: "utf8" })).toMatch(new RegExp(String(input.length)));
});

test("compressionLevel: each compression's range is accepted, and a level changes the bytes", async () => {
  const base = { packages: ["busybox"], kernel: "none" };
  expect(parseImageConfig({ ...base, compression: "gzip", compressionLevel: 1 }).compressionLevel).toBe(1);
  expect(parseImageConfig({ ...base, compression: "zstd", compressionLevel: 19 }).compressionLevel).toBe(19);
  expect(parseImageConfig({ ...base, compression: "zstd" }).compressionLevel).toBeUndefined();
  const fast = await compress("gzip", path.join(work, "l1.gz"), COMPRESSION_LEVELS.gzip.min);
  const best = await compress("gzip", path.join(work, "l9.gz"), COMPRESSION_LEVELS.gzip.max);
  expect(best.length).toBeLessThan(fast.length);
  expect(execFileSync("gzip", ["-d", "-c", path.join(work, "l1.gz")], { maxBuffer: 64 << 20 }).equals(input)).toBe(
    true,
  );
});

test.each([
  [{ compression: "gzip", compressionLevel: 10 }, "compressionLevel: got 10; expected 1 to 9 for gzip"],
  [{ compression: "zstd", compressionLevel: 22 }, "compressionLevel: got 22; expected 1 to 19 for zstd"],
  [{ compression: "zstd", compressionLevel: 0 }, "compressionLevel: got 0; expected 1 to 19 for zstd"],
  [{ compressionLevel: 2.5 }, "compressionLevel: got 2.5; expected a whole number"],
  [{ compression: "none", compressionLevel: 3 }, 'compressionLevel: got 3; expected no level with compression "none"'],
])("compressionLevel %j is refused naming the field, the value and what is accepted", (bad, message) => {
  expect(() => parseImageConfig({ packages: ["busybox"], kernel: "none", ...bad })).toThrow(message);
});
