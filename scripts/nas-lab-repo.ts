/**
 * Makes the nas-lab stack's package repository, once: the demo's Debian binaries plus
 * Debian's glibc, dropbear (with the libraries it needs), extlinux and the kernel's machine drivers,
 * packaged with `ramroot pkg build` into a signed repository (test/fixtures/nas-repo.ts).
 * Usage: node dist/scripts/nas-lab-repo.js DIR
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { buildNasRepo } from "../test/fixtures/nas-repo";

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? ".ramroot/nas-lab/repo");
  // A repository made before extlinux was packaged (the trial needs it) is made again.
  const arch = path.join(dir, "repo", "x86_64");
  if (
    fs.existsSync(path.join(arch, "APKINDEX.tar.gz")) &&
    fs.readdirSync(arch).some((f) => f.startsWith("extlinux-"))
  ) {
    process.stderr.write(`[nas-lab] repository ready at ${dir}\n`);
    return;
  }
  const work = `${dir}.partial`;
  fs.rmSync(work, { recursive: true, force: true });
  process.stderr.write(
    "[nas-lab] packaging Debian binaries (busybox, kernel + drivers, dropbear, extlinux) into a signed APK repository (once)\n",
  );
  await buildNasRepo(work);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(work, dir);
  process.stderr.write(`[nas-lab] repository ready at ${dir}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`nas-lab-repo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
