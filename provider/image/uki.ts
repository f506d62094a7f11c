/**
 * A Unified Kernel Image: systemd's EFI stub (Alpine's systemd-efistub, Debian's
 * systemd-boot-efi) with the machine appended as PE sections, one EFI executable that UEFI
 * firmware boots with no bootloader:
 *
 *   .osrel    the image's os-release (what a boot menu shows)
 *   .cmdline  the kernel command line
 *   .initrd   the microcode, then the initramfs (the kernel unpacks them in turn)
 *   .linux    the kernel (a gzip-compressed one is inflated first: the stub starts it as a PE image)
 *
 * Laid out as ukify lays it out, written here rather than by objcopy or ukify so the same inputs
 * give the same bytes on any machine: the stub's own bytes and header are kept except for the
 * section count, SizeOfImage, SizeOfInitializedData and CheckSum; each new section starts at the
 * next SectionAlignment boundary (at least 4 KiB) after the previous one in memory and at the
 * next FileAlignment boundary in the file, padded with zeros; nothing carries a time.
 */
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { replaceFile } from "../atomic-file";
import { readChunks } from "../file-chunks";
import { archInfo, archOfPeMachine, type Arch } from "../arch";
import { RamrootError } from "../ramroot-error";

export interface UkiInputs {
  arch: Arch;
  /** the stub file: linuxx64.efi.stub / linuxaa64.efi.stub */
  stub: string;
  /** the kernel file (bzImage, Image or a gzip-compressed Image) */
  kernel: string;
  /** initramfs files in the order the kernel unpacks them: microcode first */
  initrds: string[];
  cmdline: string;
  osRelease: Buffer | string;
}

export interface PeSection {
  name: string;
  virtualSize: number;
  virtualAddress: number;
  sizeOfRawData: number;
  pointerToRawData: number;
  characteristics: number;
}

export interface PeHeader {
  machine: number;
  /** where the COFF header is (after "PE\0\0") */
  coff: number;
  /** where the optional header is */
  optional: number;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfImage: number;
  sizeOfHeaders: number;
  checkSum: number;
  /** where the section table is */
  sectionTable: number;
  sections: PeSection[];
  /** the security directory (an Authenticode signature) size; 0 when unsigned */
  securitySize: number;
}

const PE32_PLUS = 0x20b;
const SECTION_HEADER = 40;
/** IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ */
const DATA_SECTION = 0x40000040;
const MIN_SECTION_ALIGNMENT = 4096;

const alignUp = (n: number, to: number) => Math.ceil(n / to) * to;

/** Reads a PE32+ image's headers and section table; `what` names it in errors. */
export function readPeHeader(buf: Buffer, what: string): PeHeader {
  const fail = (why: string): never => {
    throw new RamrootError("input", `${what} is not a PE32+ EFI executable: ${why}`);
  };
  if (buf.length < 64 || buf.toString("latin1", 0, 2) !== "MZ") fail("no MZ header");
  const peAt = buf.readUInt32LE(0x3c);
  if (peAt + 24 > buf.length || buf.toString("latin1", peAt, peAt + 4) !== "PE\0\0") fail("no PE signature");
  const coff = peAt + 4;
  const sectionCount = buf.readUInt16LE(coff + 2);
  const optionalSize = buf.readUInt16LE(coff + 16);
  const optional = coff + 20;
  if (optional + 148 > buf.length || buf.readUInt16LE(optional) !== PE32_PLUS)
    fail("its optional header is not PE32+ (0x20b)");
  const directories = buf.readUInt32LE(optional + 108);
  const sectionTable = optional + optionalSize;
  if (sectionTable + sectionCount * SECTION_HEADER > buf.length) fail("its section table runs past the end");
  const sections: PeSection[] = [];
  for (let i = 0; i < sectionCount; i++) {
    const at = sectionTable + i * SECTION_HEADER;
    sections.push({
      name: buf.toString("latin1", at, at + 8).replace(/\0.*$/s, ""),
      virtualSize: buf.readUInt32LE(at + 8),
      virtualAddress: buf.readUInt32LE(at + 12),
      sizeOfRawData: buf.readUInt32LE(at + 16),
      pointerToRawData: buf.readUInt32LE(at + 20),
      characteristics: buf.readUInt32LE(at + 36),
    });
  }
  return {
    machine: buf.readUInt16LE(coff),
    coff,
    optional,
    sectionAlignment: buf.readUInt32LE(optional + 32),
    fileAlignment: buf.readUInt32LE(optional + 36),
    sizeOfImage: buf.readUInt32LE(optional + 56),
    sizeOfHeaders: buf.readUInt32LE(optional + 60),
    checkSum: buf.readUInt32LE(optional + 64),
    sectionTable,
    sections,
    securitySize: directories > 4 ? buf.readUInt32LE(optional + 112 + 4 * 8 + 4) : 0,
  };
}

/** The PE checksum (as Windows' CheckSumMappedFile and pefile compute it), fed in pieces. */
class PeChecksum {
  private sum = 0;
  private pending: number | undefined;
  private length = 0;

  constructor(private readonly skipAt: number) {}

  add(chunk: Buffer): void {
    let i = 0;
    if (this.pending !== undefined && chunk.length > 0) {
      this.word(this.length - 1, this.pending | (chunk[0]! << 8));
      this.pending = undefined;
      i = 1;
    }
    const base = this.length;
    for (; i + 1 < chunk.length; i += 2) this.word(base + i, chunk[i]! | (chunk[i + 1]! << 8));
    if (i < chunk.length) this.pending = chunk[i]!;
    this.length += chunk.length;
  }

  private word(offset: number, value: number): void {
    // the CheckSum field itself counts as zero
    if (offset === this.skipAt || offset === this.skipAt + 2) return;
    this.sum += value;
    this.sum = (this.sum & 0xffff) + (this.sum >>> 16);
  }

  digest(): number {
    if (this.pending !== undefined) this.word(this.length - 1, this.pending);
    const folded = (this.sum & 0xffff) + (this.sum >>> 16);
    return ((folded & 0xffff) + this.length) >>> 0;
  }
}

/** The kernel as the stub starts it: inflated when gzip-compressed, and a PE image of the arch. */
function kernelImage(file: string, arch: Arch): Buffer {
  let kernel = fs.readFileSync(file);
  if (kernel[0] === 0x1f && kernel[1] === 0x8b) kernel = zlib.gunzipSync(kernel);
  const machine = readPeHeader(kernel, `kernel ${file}`).machine;
  const want = archInfo(arch).uefi.peMachine;
  if (machine !== want)
    throw new RamrootError(
      "input",
      `kernel ${file} is an EFI image for ${archOfPeMachine(machine) ?? `PE machine 0x${machine.toString(16)}`}, not ${arch}`,
    );
  return kernel;
}

type Piece = Buffer | { file: string; size: number };

const sizeOf = (p: Piece) => (Buffer.isBuffer(p) ? p.length : p.size);

/** Hands the pieces' bytes to `use` in order, a file's through one reused buffer (file-chunks.ts). */
async function eachChunk(pieces: Piece[], use: (chunk: Buffer) => void | Promise<void>): Promise<void> {
  for (const p of pieces) {
    if (Buffer.isBuffer(p)) await use(p);
    else {
      const seen = await readChunks(p.file, use);
      if (seen !== p.size)
        throw new RamrootError("input", `${p.file} changed while the UKI was written (${seen} bytes, not ${p.size})`);
    }
  }
}

/** The UKI's bytes, as pieces (buffers and files) in order. */
function layout(inputs: UkiInputs): Piece[] {
  const info = archInfo(inputs.arch);
  const stub = fs.readFileSync(inputs.stub);
  const pe = readPeHeader(stub, `EFI stub ${inputs.stub}`);
  if (pe.machine !== info.uefi.peMachine)
    throw new RamrootError(
      "input",
      `EFI stub ${inputs.stub} is for ${archOfPeMachine(pe.machine) ?? `PE machine 0x${pe.machine.toString(16)}`}, not ${inputs.arch}; use ${info.uefi.stub}`,
    );
  if (pe.securitySize !== 0)
    throw new RamrootError(
      "input",
      `EFI stub ${inputs.stub} is signed; sections appended to it would void the signature: use the unsigned stub and sign the UKI`,
    );
  const taken = new Set(pe.sections.map((s) => s.name));
  const initrds: Piece[] = inputs.initrds.map((file) => ({ file, size: fs.statSync(file).size }));
  const added: { name: string; data: Piece[] }[] = [
    { name: ".osrel", data: [Buffer.from(inputs.osRelease)] },
    { name: ".cmdline", data: [Buffer.from(inputs.cmdline)] },
    { name: ".initrd", data: initrds },
    { name: ".linux", data: [kernelImage(inputs.kernel, inputs.arch)] },
  ];
  for (const s of added)
    if (taken.has(s.name))
      throw new RamrootError("input", `EFI stub ${inputs.stub} already has a ${s.name} section; expected a bare stub`);

  const tableEnd = pe.sectionTable + (pe.sections.length + added.length) * SECTION_HEADER;
  const firstRaw = Math.min(...pe.sections.filter((s) => s.sizeOfRawData > 0).map((s) => s.pointerToRawData));
  if (tableEnd > pe.sizeOfHeaders || tableEnd > firstRaw)
    throw new RamrootError(
      "input",
      `EFI stub ${inputs.stub} has no room for ${added.length} more section headers (${pe.sizeOfHeaders} bytes of headers)`,
    );

  const sectionAlignment = Math.max(pe.sectionAlignment, MIN_SECTION_ALIGNMENT);
  let virtualAt = alignUp(
    Math.max(...pe.sections.map((s) => s.virtualAddress + Math.max(s.virtualSize, s.sizeOfRawData))),
    sectionAlignment,
  );
  const fileStart = alignUp(stub.length, pe.fileAlignment);
  let rawAt = fileStart;
  const head = Buffer.alloc(fileStart);
  stub.copy(head);
  const pieces: Piece[] = [head];
  let initialized = head.readUInt32LE(pe.optional + 8);
  let imageEnd = virtualAt;
  added.forEach((s, i) => {
    const size = s.data.reduce((n, p) => n + sizeOf(p), 0);
    const raw = alignUp(size, pe.fileAlignment);
    const at = pe.sectionTable + (pe.sections.length + i) * SECTION_HEADER;
    head.fill(0, at, at + SECTION_HEADER);
    head.write(s.name, at, 8, "latin1");
    head.writeUInt32LE(size, at + 8);
    head.writeUInt32LE(virtualAt, at + 12);
    head.writeUInt32LE(raw, at + 16);
    head.writeUInt32LE(rawAt, at + 20);
    head.writeUInt32LE(DATA_SECTION, at + 36);
    pieces.push(...s.data, Buffer.alloc(raw - size));
    initialized += raw;
    rawAt += raw;
    imageEnd = virtualAt + size;
    virtualAt = alignUp(imageEnd, sectionAlignment);
  });
  if (rawAt > 0xffffffff)
    throw new RamrootError("input", `the UKI would be ${rawAt} bytes; a PE image holds at most 4 GiB`);
  head.writeUInt16LE(pe.sections.length + added.length, pe.coff + 2);
  head.writeUInt32LE(initialized >>> 0, pe.optional + 8);
  head.writeUInt32LE(alignUp(imageEnd, pe.sectionAlignment), pe.optional + 56);
  head.writeUInt32LE(0, pe.optional + 64);
  return pieces;
}

/**
 * Writes the UKI to `out` (replaced atomically); the same inputs give the same bytes.
 * Resolves to its size.
 */
export async function writeUki(inputs: UkiInputs, out: string): Promise<{ size: number }> {
  const pieces = layout(inputs);
  const head = pieces[0] as Buffer;
  const checkSumAt = readPeHeader(head, "the UKI").optional + 64;
  const checksum = new PeChecksum(checkSumAt);
  await eachChunk(pieces, (chunk) => checksum.add(chunk));
  head.writeUInt32LE(checksum.digest(), checkSumAt);
  return replaceFile(out, async (handle) => {
    let size = 0;
    await eachChunk(pieces, async (chunk) => {
      await handle.write(chunk);
      size += chunk.length;
    });
    return { size };
  });
}
