import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..", "..", "..");
const tier = require(path.join(ROOT, "test", "fast-tier.js")) as {
  roots: string[];
  bootsQemu: string[];
  slow: string[];
};

/** What boots QEMU: the harness, the twin, a stack's boot test, the CLI's boot-test verb, the binary itself. */
const QEMU = /\bbootQemu\(|\bstartTwin\(|\brunTwin\(|["']ramroot:bootTest["']|["']boot-test["']|qemu-system-/;

/** Whether a test file, or a file under test/ it imports (a fixture), boots QEMU. */
function bootsQemu(file: string, seen = new Set<string>()): boolean {
  // (this file names the patterns; it boots nothing)
  if (seen.has(file) || file === __filename) return false;
  seen.add(file);
  const text = fs.readFileSync(file, "utf8");
  if (QEMU.test(text)) return true;
  for (const m of text.matchAll(/from "(\.[^"]+)"/g)) {
    const imported = path.resolve(path.dirname(file), m[1]!) + ".ts";
    if (imported.startsWith(path.join(ROOT, "test") + path.sep) && fs.existsSync(imported) && bootsQemu(imported, seen))
      return true;
  }
  return false;
}

function testFiles(dir: string): string[] {
  return fs
    .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => path.posix.join(dir, f.split(path.sep).join("/")));
}

test("npm run test:fast leaves out exactly the unit and engine tests that boot QEMU", () => {
  expect(tier.roots).toEqual(["test/unit", "test/engine"]);
  const files = tier.roots.flatMap(testFiles).sort();
  const booting = files.filter((f) => bootsQemu(path.join(ROOT, f)));
  expect(booting).toEqual([...tier.bootsQemu].sort());
  // the detection sees QEMU where it is known to be: the boot tests that run it
  expect(testFiles("test/boot").filter((f) => bootsQemu(path.join(ROOT, f)))).toEqual(
    expect.arrayContaining([
      "test/boot/cpio-boot.test.ts",
      "test/boot/qemu-harness.test.ts",
      "test/boot/syslinux-boot.test.ts",
    ]),
  );
});

test("the slow engine tests left to `npm test` exist, boot no QEMU, and are few", () => {
  for (const f of tier.slow) {
    expect(fs.existsSync(path.join(ROOT, f))).toBe(true);
    expect(tier.roots.some((r) => f.startsWith(`${r}/`))).toBe(true);
    expect(tier.bootsQemu).not.toContain(f);
  }
  // few: the fast tier still runs at least two thirds of the engine tests that boot no QEMU
  const quiet = testFiles("test/engine").filter((f) => !tier.bootsQemu.includes(f));
  expect(tier.slow.length * 3).toBeLessThanOrEqual(quiet.length);
});
