/**
 * `node compress-file.js IN OUT COMPRESSION [LEVEL]`: compresses a file the way a layer is
 * compressed (provider/image/compress.ts, the compression's default level unless LEVEL is
 * given), for the benchmarks' "recompress the layer" floor.
 */
import * as fs from "node:fs";
import { pipeline } from "node:stream/promises";
import { COMPRESSIONS, compressor, type Compression } from "../provider/image/compress";

async function main(argv: string[]): Promise<void> {
  const [input, out, compression, level] = argv;
  if (!input || !out || !COMPRESSIONS.includes(compression as Compression) || compression === "none") {
    throw new Error(
      `usage: compress-file IN OUT COMPRESSION [LEVEL]; COMPRESSION is gzip or zstd, got ${JSON.stringify(compression)}`,
    );
  }
  const c = compressor(compression as Compression, level === undefined ? undefined : Number(level))!;
  await pipeline(fs.createReadStream(input, { highWaterMark: 1 << 20 }), c, fs.createWriteStream(out));
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`compress-file: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
