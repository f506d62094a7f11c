/**
 * A UKI with another command line: the image's uki.efi taken apart into the stub and its four
 * sections (.osrel, .cmdline, .initrd, .linux, as uki.ts lays them out) and laid out again by
 * writeUki with the new `.cmdline`. The stub is the UKI's head with ramroot's section headers
 * taken off and SizeOfInitializedData as it was, so the result is byte for byte what writeUki
 * gives from the stub itself: a slot's UKI depends on the image and the command line only. A
 * signed UKI loses its signature (the security directory and what follows the last section).
 *
 * Under Secure Boot the stub ignores the command line a boot loader passes, so an entry's
 * command line (panic=, the stack's append, ramroot.image=, ramroot.trial=1 for a trial) is
 * baked into the UKI of that entry when the slot is written (provider/deploy/slot-uki.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Arch } from "../arch";
import { openScratchDir } from "../scratch-dir";
import { readPeHeader, writeUki, type PeSection } from "./uki";
import { InternalError } from "../ramroot-error";

/** The sections uki.ts appends to the stub, in its order. */
const RAMROOT_SECTIONS = [".osrel", ".cmdline", ".initrd", ".linux"] as const;

/** Where the security directory (an Authenticode signature) sits: data directory 4 of the optional header. */
const SECURITY_DIRECTORY = 112 + 4 * 8;

const sectionData = (buf: Buffer, s: PeSection) =>
  buf.subarray(s.pointerToRawData, s.pointerToRawData + Math.min(s.virtualSize, s.sizeOfRawData));

/** The `.cmdline` a UKI carries (as the stub passes it to the kernel). */
export function ukiCmdline(uki: string): string {
  return ukiCmdlineOf(fs.readFileSync(uki), uki);
}

/** The `.cmdline` of the UKI `buf` (`what` names it in errors). */
export function ukiCmdlineOf(buf: Buffer, what: string): string {
  const section = readPeHeader(buf, what).sections.find((s) => s.name === ".cmdline");
  if (!section) throw new InternalError(`${what} has no .cmdline section: not a UKI`);
  return sectionData(buf, section).toString("utf8").replace(/\0+$/, "");
}

/** Writes `out`: the UKI `uki` (made by uki.ts, signed or not) with `cmdline` as its `.cmdline`, unsigned. */
export async function ukiWithCmdline(uki: string, arch: Arch, cmdline: string, out: string): Promise<void> {
  const buf = fs.readFileSync(uki);
  const pe = readPeHeader(buf, uki);
  const tail = pe.sections.slice(-RAMROOT_SECTIONS.length);
  if (tail.map((s) => s.name).join(" ") !== RAMROOT_SECTIONS.join(" "))
    throw new InternalError(
      `${uki} does not end in the sections ${RAMROOT_SECTIONS.join(" ")} (it has ${pe.sections.map((s) => s.name).join(" ")}): not a UKI ramroot built`,
    );
  const [osrel, , initrd, linux] = tail as [PeSection, PeSection, PeSection, PeSection];
  const stub = Buffer.from(buf.subarray(0, osrel.pointerToRawData));
  stub.writeUInt16LE(pe.sections.length - tail.length, pe.coff + 2);
  const first = pe.sectionTable + (pe.sections.length - tail.length) * 40;
  stub.fill(0, first, first + tail.length * 40);
  const initialized = stub.readUInt32LE(pe.optional + 8) - tail.reduce((n, s) => n + s.sizeOfRawData, 0);
  stub.writeUInt32LE(initialized >>> 0, pe.optional + 8);
  stub.fill(0, pe.optional + SECURITY_DIRECTORY, pe.optional + SECURITY_DIRECTORY + 8);
  const scratch = await openScratchDir("ramroot-uki-cmdline-");
  try {
    const file = (name: string, data: Buffer) => {
      const p = path.join(scratch.dir, name);
      fs.writeFileSync(p, data);
      return p;
    };
    await writeUki(
      {
        arch,
        stub: file("stub.efi", stub),
        kernel: file("linux", sectionData(buf, linux)),
        initrds: [file("initrd", sectionData(buf, initrd))],
        cmdline,
        osRelease: Buffer.from(sectionData(buf, osrel)),
      },
      out,
    );
  } finally {
    scratch.drop();
  }
}
