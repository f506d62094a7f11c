/**
 * `node pack-tree.js TREE OUT COMPRESSION`: packs a directory the way `ramroot build` packs its
 * staging tree (collectEntries + packArchive: deterministic newc, then gzip/zstd/none), so the
 * benchmarks can set ramroot's packer against `find | cpio | gzip` over the same tree.
 * Ownership and modes are taken from the tree (it holds no package manifest).
 */
import { collectEntries, packArchive } from "../provider/image/build";
import { COMPRESSIONS, type Compression } from "../provider/image/compress";

async function main(argv: string[]): Promise<void> {
  const [tree, out, compression] = argv;
  if (!tree || !out || !COMPRESSIONS.includes(compression as Compression)) {
    throw new Error(`usage: pack-tree TREE OUT COMPRESSION; COMPRESSION is one of ${COMPRESSIONS.join(", ")}, got ${JSON.stringify(compression)}`);
  }
  const entries = collectEntries(tree, new Map(), new Set());
  const raw = await packArchive(entries, out, compression as Compression, 1700000000, () => {});
  process.stdout.write(`${entries.length} entries, ${raw} bytes unpacked\n`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`pack-tree: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
