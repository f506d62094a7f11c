/**
 * `node pack-tree.js TREE OUT COMPRESSION [LEVEL]`: packs a directory the way `ramroot build` packs its
 * staging tree (collectEntries + packArchive: deterministic newc, then gzip/zstd/none), so the
 * benchmarks can set ramroot's packer against `find | cpio | gzip` over the same tree.
 * Ownership and modes are taken from the tree (it holds no package manifest).
 */
import { collectEntries } from "../provider/image/tree-entries";
import { packArchive } from "../provider/image/pack-archive";
import { COMPRESSIONS, compressionLevelOf, type Compression } from "../provider/image/compress";

async function main(argv: string[]): Promise<void> {
  const [tree, out, compression, level] = argv;
  if (!tree || !out || !COMPRESSIONS.includes(compression as Compression)) {
    throw new Error(
      `usage: pack-tree TREE OUT COMPRESSION [LEVEL]; COMPRESSION is one of ${COMPRESSIONS.join(", ")}, got ${JSON.stringify(compression)}`,
    );
  }
  const entries = collectEntries(tree, new Map(), new Set());
  const kind = compression as Compression;
  const { rawSize: raw } = await packArchive(
    entries,
    out,
    kind,
    compressionLevelOf(kind, level === undefined ? undefined : Number(level)),
    1700000000,
    () => {},
  );
  process.stdout.write(`${entries.length} entries, ${raw} bytes unpacked\n`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`pack-tree: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
