import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { compressor } from "../../../provider/image/compress";
import { writeCpio, type CpioEntry } from "../../../provider/image/cpio-writer";
import { imageChangeSummary } from "../../../provider/image/image-summary";

// What `pulumi up` prints after a build (the AlpineImage's note): the file-level change from the
// previous image, on one screen however large the change, pointing at `ramroot image diff` for
// the rest; a first build says what the image holds.

let work: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-summary-"));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

async function image(name: string, entries: CpioEntry[]): Promise<string> {
  const out = path.join(work, name);
  const raw = new PassThrough();
  const done = pipeline(raw, compressor("gzip")!, fs.createWriteStream(out));
  await writeCpio(entries, raw, { epoch: 0 });
  raw.end();
  await done;
  return out;
}

const dir = (p: string): CpioEntry => ({ path: p, type: "dir", mode: 0o755, uid: 0, gid: 0 });
const file = (p: string, content: string, mode = 0o644): CpioEntry => ({
  path: p,
  type: "file",
  mode,
  uid: 0,
  gid: 0,
  source: Buffer.from(content),
});

test("a large change fits one screen: the count line, 19 paths, and how many lines `ramroot image diff` has beyond them", async () => {
  const before = await image("before", [dir("etc"), file("etc/message", "hello\n"), dir("usr"), dir("usr/share")]);
  const many = Array.from({ length: 60 }, (_, i) => file(`usr/share/f${String(i).padStart(2, "0")}`, `${i}\n`));
  const after = await image("after", [
    dir("etc"),
    file("etc/message", "edited\n", 0o600),
    dir("usr"),
    dir("usr/share"),
    ...many,
  ]);
  const lines = (await imageChangeSummary(after, before)).split("\n");
  expect(lines).toHaveLength(21);
  expect(lines[0]).toBe("files changed from the previous image: +60 -0 ~1 paths, 0 packages changed");
  expect(lines[1]).toBe("(no package: overlay, config and what the build made):");
  expect(lines[2]).toMatch(/^ {2}~ etc\/message {2}mode 0644 -> 0600; size 6 -> 7, /);
  expect(lines[3]).toMatch(/^ {2}\+ usr\/share\/f00 {2}file 0644 0:0 2 [0-9a-f]{12}$/);
  expect(lines[20]).toBe("... 43 more lines (ramroot image diff shows all)");

  const back = (await imageChangeSummary(before, after)).split("\n");
  expect(back[0]).toBe("files changed from the previous image: +0 -60 ~1 paths, 0 packages changed");
});

test("a small change is shown whole; a first build (no previous image here) says what the image holds", async () => {
  const before = await image("before", [dir("etc"), file("etc/message", "hello\n")]);
  const after = await image("after", [dir("etc"), file("etc/message", "edited by a newcomer\n")]);
  expect(await imageChangeSummary(after, before)).toMatch(
    /^files changed from the previous image: \+0 -0 ~1 paths, 0 packages changed\n\(no package: overlay, config and what the build made\):\n {2}~ etc\/message {2}size 6 -> 21, sha256 [0-9a-f]{12} -> [0-9a-f]{12}$/,
  );
  expect(await imageChangeSummary(after, path.join(work, "gone"))).toBe(
    "image holds 2 paths (1 file) from 0 packages in 1 archive; `ramroot image ls` lists them",
  );
  expect(await imageChangeSummary(after, undefined)).toBe(
    "image holds 2 paths (1 file) from 0 packages in 1 archive; `ramroot image ls` lists them",
  );
});
