/**
 * The UKI writer on real inputs: systemd's EFI stubs from Debian's systemd-boot-efi (amd64 and
 * arm64), Debian's kernels. The section table is read back by binutils' objdump, a PE reader
 * that is not ramroot's.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { archInfo, type Arch } from "../../../provider/arch";
import { efiStubPath } from "../../../provider/image/boot-split";
import { readPeHeader, writeUki } from "../../../provider/image/uki";
import { debianDeb } from "../../fixtures/debian-deb";
import { debianKernel } from "../../fixtures/debian-kernel";

jest.setTimeout(300_000);

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-uki-"));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function stub(arch: Arch): string {
  const root = debianDeb("systemd-boot-efi", {
    arch: arch === "x86_64" ? undefined : archInfo(arch).debian,
    ready: (r) => fs.existsSync(path.join(r, efiStubPath(arch))),
  });
  return path.join(root, efiStubPath(arch));
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** objdump -h: name -> [size, file offset]. */
function objdumpSections(file: string): Map<string, { size: number; offset: number; vma: number }> {
  const out = execFileSync("objdump", ["-h", file], { encoding: "utf8" });
  const sections = new Map<string, { size: number; offset: number; vma: number }>();
  for (const m of out.matchAll(/^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)/gm))
    sections.set(m[1]!, { size: parseInt(m[2]!, 16), vma: parseInt(m[3]!, 16), offset: parseInt(m[4]!, 16) });
  return sections;
}

test("x86_64: the stub's sections stay, .osrel .cmdline .initrd (microcode first) .linux follow, aligned; same inputs, same bytes", async () => {
  const kernel = debianKernel("x86_64").vmlinuz;
  const microcode = path.join(work, "microcode");
  const initramfs = path.join(work, "initramfs");
  fs.writeFileSync(microcode, Buffer.alloc(1001, 0x4d)); // odd sizes: the checksum's words straddle the files
  fs.writeFileSync(initramfs, Buffer.alloc(5003, 0x49));
  const inputs = {
    arch: "x86_64" as const,
    stub: stub("x86_64"),
    kernel,
    initrds: [microcode, initramfs],
    cmdline: "rdinit=/sbin/init console=ttyS0",
    osRelease: 'ID=alpine\nPRETTY_NAME="Alpine Linux v3.20"\n',
  };
  const a = path.join(work, "a.efi");
  const b = path.join(work, "b.efi");
  await writeUki(inputs, a);
  await writeUki(inputs, b);
  const bytes = fs.readFileSync(a);
  expect(sha256(fs.readFileSync(b))).toBe(sha256(bytes));

  const stubPe = readPeHeader(fs.readFileSync(inputs.stub), "stub");
  const sections = objdumpSections(a);
  // the stub's own sections, unchanged, then the four
  expect([...sections.keys()]).toEqual([
    ...stubPe.sections.map((s) => s.name),
    ".osrel",
    ".cmdline",
    ".initrd",
    ".linux",
  ]);
  const content = (name: string) => {
    const s = sections.get(name)!;
    return bytes.subarray(s.offset, s.offset + s.size);
  };
  expect(content(".osrel").toString()).toBe(inputs.osRelease);
  expect(content(".cmdline").toString()).toBe(inputs.cmdline);
  expect(sha256(content(".initrd"))).toBe(
    sha256(Buffer.concat([fs.readFileSync(microcode), fs.readFileSync(initramfs)])),
  );
  expect(sha256(content(".linux"))).toBe(sha256(fs.readFileSync(kernel)));
  const pe = readPeHeader(bytes, "uki");
  for (const s of pe.sections.slice(stubPe.sections.length)) {
    expect(s.virtualAddress % 4096).toBe(0);
    expect(s.pointerToRawData % pe.fileAlignment).toBe(0);
  }
  const last = pe.sections.at(-1)!;
  expect(pe.sizeOfImage).toBe(
    Math.ceil((last.virtualAddress + last.virtualSize) / pe.sectionAlignment) * pe.sectionAlignment,
  );
  expect(bytes.length).toBe(last.pointerToRawData + last.sizeOfRawData);
  expect(pe.checkSum).not.toBe(0);
});

test("aarch64: a gzip-compressed Image is inflated into .linux; a stub or kernel of another architecture is refused", async () => {
  const kernel = debianKernel("aarch64").vmlinuz;
  const gz = path.join(work, "Image.gz");
  fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(kernel), { level: 1 }));
  const initramfs = path.join(work, "initramfs");
  fs.writeFileSync(initramfs, "cpio");
  const out = path.join(work, "aa64.efi");
  const inputs = {
    arch: "aarch64" as const,
    stub: stub("aarch64"),
    kernel: gz,
    initrds: [initramfs],
    cmdline: "",
    osRelease: "ID=x\n",
  };
  await writeUki(inputs, out);
  const bytes = fs.readFileSync(out);
  const pe = readPeHeader(bytes, "uki");
  expect(pe.machine).toBe(0xaa64);
  const linux = pe.sections.find((s) => s.name === ".linux")!;
  expect(sha256(bytes.subarray(linux.pointerToRawData, linux.pointerToRawData + linux.virtualSize))).toBe(
    sha256(fs.readFileSync(kernel)),
  );

  await expect(writeUki({ ...inputs, stub: stub("x86_64") }, out)).rejects.toThrow(
    /EFI stub .*linuxx64\.efi\.stub is for x86_64, not aarch64; use linuxaa64\.efi\.stub/,
  );
  await expect(writeUki({ ...inputs, kernel: debianKernel("x86_64").vmlinuz }, out)).rejects.toThrow(
    /kernel .* is an EFI image for x86_64, not aarch64/,
  );
  await expect(writeUki({ ...inputs, kernel: initramfs }, out)).rejects.toThrow(
    /is not a PE32\+ EFI executable: no MZ header/,
  );
  // a refused UKI leaves the one written before as it was
  expect(sha256(fs.readFileSync(out))).toBe(sha256(bytes));
});
