/**
 * Makes the demo's package repository, once: Debian binaries (busybox-static, a Debian
 * kernel) packaged with `ramroot pkg build` into a signed repository with `ramroot repo index`,
 * the same way the tests make theirs. Usage: node dist/scripts/demo-repo.js DIR
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { buildImageRepo } from "../test/fixtures/image-repo";

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? ".ramroot/demo/repo");
  const index = path.join(dir, "repo", "x86_64", "APKINDEX.tar.gz");
  if (fs.existsSync(index)) {
    process.stderr.write(`[demo] repository ready at ${dir}\n`);
    return;
  }
  const work = `${dir}.partial`;
  fs.rmSync(work, { recursive: true, force: true });
  process.stderr.write("[demo] packaging Debian binaries into a signed APK repository (once)\n");
  await buildImageRepo(work);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(work, dir);
  process.stderr.write(`[demo] repository ready at ${dir}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`demo-repo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
