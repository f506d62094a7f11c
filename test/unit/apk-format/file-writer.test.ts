import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FileWriter } from "../../../provider/apk/file-writer";

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-file-writer-"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const fresh = (name: string) => {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  return dir;
};

test("writes whole files with content, mode and mtime; a piece is reusable once the call returns", async () => {
  const dir = fresh("many");
  const writer = new FileWriter();
  const replies = [];
  // one buffer reused for every file's second piece, as the tar stream reuses its pieces
  const second = Buffer.alloc((10 << 10) - 4000);
  for (let i = 0; i < 300; i++) {
    const content = Buffer.alloc(10 << 10, i % 251);
    content.copy(second, 0, 4000);
    replies.push(
      writer.writeFile(`f${i}`, path.join(dir, `f${i}`), 0o640, [content.subarray(0, 4000), second], {
        chmod: 0o600,
        mtime: 1_000_000 + i,
      }),
    );
    second.fill(0xff);
  }
  const answers = await Promise.all(replies);
  writer.close();
  expect(answers.flatMap((a) => a.errors)).toEqual([]);
  for (const i of [0, 1, 63, 64, 150, 299]) {
    const file = path.join(dir, `f${i}`);
    const st = fs.statSync(file);
    expect(st.size).toBe(10 << 10);
    expect(st.mode & 0o7777).toBe(0o600);
    expect(st.mtimeMs).toBe((1_000_000 + i) * 1000);
    const got = fs.readFileSync(file);
    expect(got.equals(Buffer.alloc(10 << 10, i % 251))).toBe(true);
  }
});

test("streams a large file in pieces, then gives it its mode and mtime", async () => {
  const dir = fresh("stream");
  const writer = new FileWriter();
  const id = writer.openFile("big", path.join(dir, "big"), 0o644);
  const pieces = [Buffer.alloc(3 << 20, 1), Buffer.alloc(9 << 20, 2), Buffer.alloc(5, 3)];
  for (const piece of pieces) writer.append("big", id, [piece]);
  const closed = writer.closeFile("big", id, { chmod: 0o755, mtime: 42 });
  expect((await closed).errors).toEqual([]);
  writer.close();
  const got = fs.readFileSync(path.join(dir, "big"));
  expect(got.equals(Buffer.concat(pieces))).toBe(true);
  expect(fs.statSync(path.join(dir, "big")).mode & 0o7777).toBe(0o755);
});

test("a file that cannot be created is reported by its path; the files after it are written", async () => {
  const dir = fresh("fail");
  fs.writeFileSync(path.join(dir, "taken"), "already here");
  fs.symlinkSync("/etc/passwd", path.join(dir, "link"));
  const writer = new FileWriter();
  const a = writer.writeFile("taken", path.join(dir, "taken"), 0o644, [Buffer.from("new")], {});
  const b = writer.writeFile("link", path.join(dir, "link"), 0o644, [Buffer.from("through")], {});
  const c = writer.writeFile("ok", path.join(dir, "ok"), 0o644, [Buffer.from("fine")], {});
  // a streamed file whose creation fails is reported with its closing step
  const id = writer.openFile("missing/deep", path.join(dir, "missing", "deep"), 0o644);
  writer.append("missing/deep", id, [Buffer.from("lost")]);
  const d = writer.closeFile("missing/deep", id, {});
  const replies = await Promise.all([a, b, c, d]);
  writer.close();
  expect(replies.map((r) => r.errors.map(([rel]) => rel))).toEqual([["taken"], ["link"], [], ["missing/deep"]]);
  expect(replies[0]!.errors[0]![1]).toMatch(/EEXIST/);
  expect(replies[3]!.errors[0]![1]).toMatch(/ENOENT/);
  expect(fs.readFileSync(path.join(dir, "taken"), "utf8")).toBe("already here");
  expect(fs.readlinkSync(path.join(dir, "link"))).toBe("/etc/passwd");
  expect(fs.readFileSync(path.join(dir, "ok"), "utf8")).toBe("fine");
});
