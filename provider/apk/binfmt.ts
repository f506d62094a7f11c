/**
 * Whether this machine's kernel can run another architecture's programs: through a
 * binfmt_misc entry that hands its ELF executables to QEMU's user-mode emulator (Debian's
 * qemu-user-static registers them, Alpine's qemu-openrc too). Install scripts run in a sandbox
 * that sees only the image's root, where the host's emulator binary is not; so the entry must
 * carry the F (fix-binary) flag: the kernel opened the emulator when it was registered and
 * uses that file in every mount namespace.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { archInfo } from "../arch";

export const BINFMT_DIR = "/proc/sys/fs/binfmt_misc";

export interface BinfmtEntry {
  name: string;
  enabled: boolean;
  interpreter: string;
  flags: string;
  offset: number;
  magic: Buffer;
  mask: Buffer;
}

/** Parses one entry file as the kernel prints it (enabled, interpreter, flags, offset, magic, mask). */
export function parseBinfmtEntry(name: string, text: string): BinfmtEntry | undefined {
  const lines = text.split("\n").map((l) => l.trim());
  const value = (key: string) =>
    lines.find((l) => l.startsWith(`${key} `) || l.startsWith(`${key}:`))?.replace(/^[a-z]+:?\s*/, "");
  const magic = value("magic");
  // An "extension" entry matches by file name, never an ELF header.
  if (magic === undefined || !/^([0-9a-f]{2})+$/.test(magic)) return undefined;
  const mask = value("mask");
  return {
    name,
    enabled: lines[0] === "enabled",
    interpreter: value("interpreter") ?? "",
    flags: value("flags") ?? "",
    offset: Number(value("offset") ?? "0"),
    magic: Buffer.from(magic, "hex"),
    mask: mask !== undefined && /^([0-9a-f]{2})+$/.test(mask) ? Buffer.from(mask, "hex") : Buffer.alloc(0),
  };
}

/** The first 20 bytes of a 64-bit little-endian ELF executable (`type` 2) or PIE (3) for `machine`. */
function elfHeader(machine: number, type: number): Buffer {
  const h = Buffer.alloc(20);
  h.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  h.writeUInt16LE(type, 16);
  h.writeUInt16LE(machine, 18);
  return h;
}

function matches(entry: BinfmtEntry, header: Buffer): boolean {
  if (entry.offset + entry.magic.length > header.length) return false;
  for (let i = 0; i < entry.magic.length; i++) {
    const m = entry.mask.length > i ? entry.mask[i]! : 0xff;
    if ((header[entry.offset + i]! & m) !== (entry.magic[i]! & m)) return false;
  }
  return true;
}

export type ForeignRun = { ok: true; entry: BinfmtEntry } | { ok: false; reason: string };

/**
 * Whether programs of `arch` (static and dynamic executables) run here through binfmt_misc,
 * with the entry that runs them, or why not.
 */
export function foreignRun(arch: string, dir = BINFMT_DIR): ForeignRun {
  const info = archInfo(arch);
  const hint = `install QEMU's user-mode emulator registered with the F flag (Debian: apt-get install qemu-user-static, which registers ${info.binfmtName})`;
  let status: string;
  try {
    status = fs.readFileSync(path.join(dir, "status"), "utf8").trim();
  } catch {
    return { ok: false, reason: `binfmt_misc is not mounted at ${dir}; ${hint}` };
  }
  if (status !== "enabled") return { ok: false, reason: `binfmt_misc at ${dir} is ${status}; ${hint}` };
  const entries = fs
    .readdirSync(dir)
    .filter((n) => n !== "status" && n !== "register")
    .sort()
    .flatMap((n) => {
      try {
        return [parseBinfmtEntry(n, fs.readFileSync(path.join(dir, n), "utf8"))].filter((e) => e !== undefined);
      } catch {
        return [];
      }
    });
  const headers = [elfHeader(info.elfMachine, 2), elfHeader(info.elfMachine, 3)];
  const runs = entries.filter((e) => e.enabled && headers.every((h) => matches(e, h)));
  const fixed = runs.find((e) => e.flags.includes("F"));
  if (fixed) return { ok: true, entry: fixed };
  if (runs.length > 0)
    return {
      ok: false,
      reason: `binfmt_misc entry ${runs[0]!.name} runs ${arch} programs with ${runs[0]!.interpreter}, but without the F (fix-binary) flag, so not inside the sandbox, where only the image's root is visible; register it with F (qemu-user-static does)`,
    };
  return { ok: false, reason: `no binfmt_misc entry runs ${arch} programs; ${hint}` };
}
