/**
 * When a foreign architecture's install scripts can run: binfmt_misc entries as the kernel
 * prints them (the qemu-aarch64 entry below is what Debian's qemu-user-static registers), in a
 * directory standing in for /proc/sys/fs/binfmt_misc. Registering a real entry would change
 * the shared kernel of every process on the machine, so none is made here.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { foreignRun, parseBinfmtEntry } from "../../../provider/apk/binfmt";
import { chooseRunner } from "../../../provider/apk/install-scripts";

const QEMU_AARCH64 = (flags: string, state = "enabled") =>
  [
    state,
    "interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P",
    `flags: ${flags}`,
    "offset 0",
    "magic 7f454c460201010000000000000000000200b700",
    "mask ffffffffffffff00fffffffffffffffffeffffff",
    "",
  ].join("\n");

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-binfmt-"));
  fs.writeFileSync(path.join(dir, "status"), "enabled\n");
  fs.writeFileSync(path.join(dir, "register"), "");
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test("an enabled entry for aarch64 ELF executables with the F flag runs aarch64 programs, static and PIE", () => {
  fs.writeFileSync(path.join(dir, "qemu-aarch64"), QEMU_AARCH64("POCF"));
  // an extension entry and another architecture's do not confuse it
  fs.writeFileSync(path.join(dir, "jar"), "enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n");
  fs.writeFileSync(path.join(dir, "qemu-riscv64"), QEMU_AARCH64("POCF").replace("0200b700", "0200f300"));
  const run = foreignRun("aarch64", dir);
  expect(run).toEqual({ ok: true, entry: expect.objectContaining({ name: "qemu-aarch64", flags: "POCF" }) });
  expect(foreignRun("x86_64", dir)).toEqual({
    ok: false,
    reason: expect.stringMatching(/^no binfmt_misc entry runs x86_64 programs; install QEMU's user-mode emulator/),
  });
});

test("without the F flag, disabled, or no binfmt_misc at all: not runnable, and the reason says why", () => {
  fs.writeFileSync(path.join(dir, "qemu-aarch64"), QEMU_AARCH64("POC"));
  expect(foreignRun("aarch64", dir)).toEqual({
    ok: false,
    reason: expect.stringMatching(
      /qemu-aarch64 runs aarch64 programs with .*aarch64-binfmt-P, but without the F \(fix-binary\) flag/,
    ),
  });
  fs.writeFileSync(path.join(dir, "qemu-aarch64"), QEMU_AARCH64("POCF", "disabled"));
  expect(foreignRun("aarch64", dir)).toMatchObject({
    ok: false,
    reason: expect.stringMatching(/^no binfmt_misc entry/),
  });
  fs.writeFileSync(path.join(dir, "status"), "disabled\n");
  expect(foreignRun("aarch64", dir)).toMatchObject({ ok: false, reason: expect.stringMatching(/is disabled/) });
  expect(foreignRun("aarch64", path.join(dir, "absent"))).toMatchObject({
    ok: false,
    reason: expect.stringMatching(/binfmt_misc is not mounted/),
  });
  expect(parseBinfmtEntry("jar", "enabled\nextension .jar\n")).toBeUndefined();
});

test("this host: an image of its own architecture runs its scripts; another one's only through binfmt_misc", () => {
  const host = process.arch === "arm64" ? "aarch64" : "x86_64";
  const other = host === "x86_64" ? "aarch64" : "x86_64";
  expect(chooseRunner({ root: dir, targetArch: host }).runner).toBe("sandbox");
  expect(chooseRunner({ root: dir, targetArch: "noarch" }).runner).toBe("sandbox");
  const foreign = foreignRun(other);
  const chosen = chooseRunner({ root: dir, targetArch: other });
  expect(chosen.runner).toBe(foreign.ok ? "sandbox" : "none");
  if (!foreign.ok) expect(chosen.reason).toContain(foreign.reason);
});
