import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { openTarget } from "../../../provider/boot/target";
import { mtoolsEnv } from "../../../provider/boot/mtools";

// The image target reads every listing, file and hash straight from the FAT (fat.ts). The judge is
// mtools on volumes made by dosfstools' mkfs.fat, neither of them ramroot's: FAT12, FAT16 and
// FAT32, one and several sectors per cluster, long names (non-ASCII too), lower- and upper-case
// short names, deleted entries among the kept ones, and a file whose clusters are not in one run.
jest.setTimeout(180_000);

let work: string;
beforeAll(() => (work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-fat-reader-"))));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

test.each([
  [12, 2, 1],
  [16, 16, 2],
  [32, 64, 1],
])("FAT%i (%i MiB, %i sectors per cluster): lists, reads and hashes as mdir and mcopy do", async (bits, mib, spc) => {
  const img = path.join(work, `fat${bits}.img`);
  execFileSync("truncate", ["-s", `${mib}M`, img]);
  execFileSync("mkfs.fat", ["-F", String(bits), "-s", String(spc), img], { stdio: "ignore" });
  // A UTF-8 locale, so mtools writes and shows non-ASCII long names as they are (in the C locale it cannot).
  const env = { ...process.env, ...mtoolsEnv(), LC_ALL: "C.UTF-8" };
  const m = (cmd: string, ...args: string[]) => execFileSync(cmd, ["-i", img, ...args], { env, maxBuffer: 1 << 26 });
  const files: Record<string, Buffer> = {
    "a/vmlinuz": randomBytes(200_000),
    "a/Mixed Case.TXT": Buffer.from("m"),
    "UPPER.CFG": Buffer.from("u"),
    "lower.cfg": Buffer.from("l"),
    "Long Dir Name/naïve ünï.txt": Buffer.from("n"),
    "layers/0a1b2c3d.4e5": Buffer.from("x"),
    "deep/er/f": Buffer.from("d"),
  };
  for (let i = 0; i < 8; i++) files[`many/file-with-a-long-name-${i}.conf`] = Buffer.from(String(i));
  const dirs = ["a", "Long Dir Name", "layers", "deep", "deep/er", "many"];
  for (const d of dirs) m("mmd", `::/${d}`);
  // Small files, every other one deleted, then a larger one: it fills the holes first.
  const local = path.join(work, `src${bits}`);
  for (let i = 0; i < 8; i++) {
    fs.writeFileSync(local, randomBytes(3000));
    m("mcopy", local, `::/frag${i}`);
  }
  for (let i = 0; i < 8; i += 2) m("mdel", `::/frag${i}`);
  files.big = randomBytes(150_000);
  for (const [name, bytes] of Object.entries(files)) {
    fs.writeFileSync(local, bytes);
    m("mcopy", local, `::/${name}`);
  }
  for (const i of [1, 5]) {
    m("mdel", `::/many/file-with-a-long-name-${i}.conf`);
    delete files[`many/file-with-a-long-name-${i}.conf`];
  }
  const target = await openTarget({ kind: "image", path: img });
  try {
    for (const d of ["", ...dirs]) {
      const mdir = m("mdir", "-a", "-b", `::/${d}`)
        .toString("utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l.startsWith("::/"))
        .map((l) => path.posix.basename(l.replace(/\/$/, "")))
        .sort();
      expect({ dir: d, names: await target.list(d) }).toEqual({ dir: d, names: mdir });
    }
    for (const name of [...Object.keys(files), "frag1", "frag3", "frag5", "frag7"]) {
      const mcopy = m("mcopy", "-n", `::/${name}`, "-");
      if (files[name]) expect(mcopy.equals(files[name])).toBe(true);
      expect((await target.readFile(name))?.equals(mcopy)).toBe(true);
      expect(await target.sha256(name)).toBe(sha(mcopy));
    }
    expect(await target.readFile("frag0")).toBeUndefined();
    expect(await target.sha256("many/file-with-a-long-name-1.conf")).toBeUndefined();
  } finally {
    await target.close();
  }
});
