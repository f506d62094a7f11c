import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  isTempName,
  replaceFile,
  shortTempNameFor,
  tempNameFor,
  writeFileAtomic,
  writeFileAtomicSync,
} from "../../../provider/atomic-file";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-atomic-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test("a replace leaves the new bytes and no temporary file; parents are created", async () => {
  const file = path.join(dir, "sub", "f.json");
  await writeFileAtomic(file, "one");
  writeFileAtomicSync(file, "two", { mode: 0o600 });
  expect(fs.readFileSync(file, "utf8")).toBe("two");
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  expect(fs.readdirSync(path.dirname(file))).toEqual(["f.json"]);
});

test("a failing fill or verify keeps the old file and removes the temporary one", async () => {
  const file = path.join(dir, "f");
  fs.writeFileSync(file, "old");
  await expect(
    replaceFile(file, async (handle) => {
      await handle.writeFile("half");
      throw new Error("disk full");
    }),
  ).rejects.toThrow("disk full");
  await expect(
    replaceFile(file, async (handle) => (await handle.writeFile("new"), "sum"), {
      verify: async (temp, sum) => {
        expect(fs.readFileSync(temp, "utf8")).toBe("new");
        throw new Error(`mismatch ${sum}`);
      },
    }),
  ).rejects.toThrow("mismatch sum");
  expect(fs.readFileSync(file, "utf8")).toBe("old");
  expect(fs.readdirSync(dir)).toEqual(["f"]);
});

test("one naming scheme for temporary names, posix or native paths", () => {
  const a = tempNameFor("a/vmlinuz");
  expect(a).toMatch(/^a\/vmlinuz\.tmp-[0-9a-z]+$/);
  expect(tempNameFor("syslinux.cfg")).toMatch(/^syslinux\.cfg\.tmp-/);
  expect(isTempName(a)).toBe(true);
  expect(isTempName("a/vmlinuz")).toBe(false);
  expect(tempNameFor("x")).not.toBe(tempNameFor("x"));
  // An 8.3 temporary name (for FAT through mtools), recognized as one; a layer's name is not.
  const short = shortTempNameFor("layers/3f9c01ab.cd2");
  expect(short).toMatch(/^layers\/~t[0-9a-f]{6}\.tmp$/);
  expect(isTempName(short)).toBe(true);
  expect(isTempName("layers/3f9c01ab.cd2")).toBe(false);
});
