import { z } from "zod";
import { sha256Hex } from "../../../file-hash";
import { parseInput } from "../../../input-error";
import { entryAppendSchema } from "../../../machine/kernel-append";
import { listDirectories, type BootTarget } from "../../boot-target";
import { ConflictError, FieldError, RamrootError } from "../../../ramroot-error";

/** One boot entry: `LABEL label`, `LINUX kernel`, `INITRD a,b`, `APPEND ...`. */
export interface SyslinuxEntry {
  label: string;
  /** `MENU LABEL`: what the slot holds, for people at the console. */
  menuLabel?: string;
  /** path of the kernel as syslinux sees it, e.g. "/a/vmlinuz" */
  kernel: string;
  /** initramfs images in load order, microcode first, e.g. ["/a/microcode", "/a/initramfs"] */
  initrd: string[];
  /** the kernel command line, e.g. "rdinit=/sbin/init console=ttyS0 panic=5" */
  append: string;
}

export interface SyslinuxConfigSpec {
  defaultLabel: string;
  /** deciseconds; 0 = boot DEFAULT at once */
  timeout: number;
  /** `PROMPT 1` shows the boot: prompt (default false) */
  prompt?: boolean;
  /** `SERIAL port baud`; default { port: 0, baud: 115200 }; false = no SERIAL line */
  serial?: { port: number; baud: number } | false;
  entries: SyslinuxEntry[];
}

/** The serial console a config gets when none is given: headless machines are the point. */
export const DEFAULT_SERIAL = { port: 0, baud: 115200 } as const;

const oneLine = (what: string) => (v: string) => !/[\r\n\0]/.test(v) || `${what} must be a single line`;
const pathToken = z
  .string()
  .min(1, "expected a non-empty path")
  .refine((v) => !/[\s,]/.test(v), "expected a path without spaces or commas (syslinux splits on them)");

const entrySchema = z.strictObject({
  label: z.string().regex(/^[A-Za-z0-9._+-]{1,64}$/, "expected a label of 1-64 letters, digits, . _ + -"),
  menuLabel: z
    .string()
    .refine((v) => oneLine("menuLabel")(v) === true, "expected a single line")
    .optional(),
  kernel: pathToken,
  initrd: z.array(pathToken),
  append: entryAppendSchema,
});

/** zod schema of a config spec: labels unique, DEFAULT names one of them. */
export const syslinuxConfigSpecSchema = z
  .strictObject({
    defaultLabel: z.string().min(1, "expected the label of one of the entries"),
    timeout: z
      .number()
      .int("expected whole deciseconds")
      .min(0, "expected 0 or more deciseconds")
      .max(35996, "expected at most 35996 deciseconds (syslinux's limit)"),
    prompt: z.boolean().optional(),
    serial: z
      .union([
        z.strictObject({
          port: z.number().int().min(0, "expected a serial port number 0-3 or an I/O address").max(0xffff),
          baud: z
            .number()
            .int()
            .min(75, "expected a baud rate such as 115200")
            .max(115200, "expected a baud rate of at most 115200"),
        }),
        z.literal(false),
      ])
      .optional(),
    entries: z.array(entrySchema).min(1, "expected at least one entry"),
  })
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    spec.entries.forEach((entry, i) => {
      if (seen.has(entry.label.toLowerCase())) {
        ctx.addIssue({
          code: "custom",
          path: ["entries", i, "label"],
          input: entry.label,
          message: "expected labels to be unique (case-insensitive, as syslinux matches them)",
        });
      }
      seen.add(entry.label.toLowerCase());
    });
    if (!seen.has(spec.defaultLabel.toLowerCase())) {
      ctx.addIssue({
        code: "custom",
        path: ["defaultLabel"],
        input: spec.defaultLabel,
        message: `expected one of the entry labels: ${spec.entries.map((e) => e.label).join(", ")}`,
      });
    }
  });

/** The entry named `label`, matched case-insensitively as syslinux matches labels. */
export function entryByLabel(spec: Pick<SyslinuxConfigSpec, "entries">, label: string): SyslinuxEntry | undefined {
  const want = label.toLowerCase();
  return spec.entries.find((e) => e.label.toLowerCase() === want);
}

/** Validates untrusted input into a config spec, or throws an error naming field, value and what is accepted. */
export function parseSyslinuxConfigSpec(input: unknown): SyslinuxConfigSpec {
  return parseInput(syslinuxConfigSpecSchema, input, "syslinux config");
}

/** The spec with its defaults filled in; parse(render(x)) equals normalize(x). */
export function normalizeSyslinuxConfig(
  spec: SyslinuxConfigSpec,
): SyslinuxConfigSpec & { prompt: boolean; serial: { port: number; baud: number } | false } {
  return {
    defaultLabel: spec.defaultLabel,
    timeout: spec.timeout,
    prompt: spec.prompt ?? false,
    serial: spec.serial === undefined ? { ...DEFAULT_SERIAL } : spec.serial,
    entries: spec.entries.map((e) => ({
      label: e.label,
      ...(e.menuLabel !== undefined ? { menuLabel: e.menuLabel } : {}),
      kernel: e.kernel,
      initrd: [...e.initrd],
      append: e.append,
    })),
  };
}

/** Renders syslinux.cfg. Same spec, same bytes. */
export function renderSyslinuxConfig(input: SyslinuxConfigSpec): string {
  const spec = normalizeSyslinuxConfig(parseSyslinuxConfigSpec(input));
  const lines = ["# Written by ramroot: replaced as a whole on every change; edit the stack, not this file."];
  if (spec.serial !== false) lines.push(`SERIAL ${spec.serial.port} ${spec.serial.baud}`);
  lines.push(`PROMPT ${spec.prompt ? 1 : 0}`, `TIMEOUT ${spec.timeout}`, `DEFAULT ${spec.defaultLabel}`);
  for (const entry of spec.entries) {
    lines.push("", `LABEL ${entry.label}`);
    if (entry.menuLabel !== undefined && entry.menuLabel.trim() !== "")
      lines.push(`  MENU LABEL ${entry.menuLabel.trim()}`);
    lines.push(`  LINUX ${entry.kernel}`);
    if (entry.initrd.length > 0) lines.push(`  INITRD ${entry.initrd.join(",")}`);
    if (entry.append.trim() !== "") lines.push(`  APPEND ${entry.append.trim()}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * Parses a syslinux config the way syslinux reads it, as far as ramroot cares: keywords in any
 * case, `#` comments, KERNEL as an alias of LINUX, `initrd=` inside APPEND as an INITRD, DEFAULT
 * falling back to ONTIMEOUT, MENU DEFAULT and then the first label. Lines it does not use (UI,
 * MENU TITLE, SAY...) are skipped. Written by hand because no maintained npm parser for this
 * format exists and the format is a few line-oriented keywords.
 */
export function parseSyslinuxConfig(text: string): SyslinuxConfigSpec {
  let defaultLabel: string | undefined;
  let onTimeout: string | undefined;
  let menuDefault: string | undefined;
  let timeout = 0;
  let prompt = false;
  let serial: SyslinuxConfigSpec["serial"] = false;
  const entries: SyslinuxEntry[] = [];
  let current: SyslinuxEntry | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const match = /^(\S+)\s*(.*)$/.exec(line);
    if (!match) return;
    const keyword = (match[1] ?? "").toLowerCase();
    const rest = (match[2] ?? "").trim();
    const where = `syslinux config line ${index + 1}`;
    switch (keyword) {
      case "label":
        current = { label: rest, kernel: "", initrd: [], append: "" };
        entries.push(current);
        return;
      case "menu": {
        const sub = /^(\S+)\s*(.*)$/.exec(rest);
        const what = (sub?.[1] ?? "").toLowerCase();
        if (current && what === "label") current.menuLabel = (sub?.[2] ?? "").trim();
        if (current && what === "default") menuDefault = current.label;
        return;
      }
      case "linux":
      case "kernel":
        if (current) current.kernel = rest;
        return;
      case "initrd":
        if (current) current.initrd = splitInitrd(rest);
        return;
      case "append":
        if (current) {
          const tokens = rest === "-" ? [] : rest.split(/\s+/).filter((t) => t !== "");
          const initrd = tokens.find((t) => t.toLowerCase().startsWith("initrd="));
          if (initrd !== undefined && current.initrd.length === 0)
            current.initrd = splitInitrd(initrd.slice("initrd=".length));
          current.append = tokens.filter((t) => !t.toLowerCase().startsWith("initrd=")).join(" ");
        }
        return;
      case "default":
        defaultLabel = rest.split(/\s+/)[0];
        return;
      case "ontimeout":
        onTimeout = rest.split(/\s+/)[0];
        return;
      case "timeout":
        timeout = parseNumber(rest, `${where}: TIMEOUT`);
        return;
      case "prompt":
        prompt = parseNumber(rest, `${where}: PROMPT`) !== 0;
        return;
      case "serial": {
        const [port, baud] = rest.split(/\s+/);
        serial = {
          port: parseNumber(port ?? "", `${where}: SERIAL port`),
          baud: baud === undefined ? 9600 : parseNumber(baud, `${where}: SERIAL baud`),
        };
        return;
      }
      default:
        return;
    }
  });
  for (const entry of entries) if (entry.kernel === "") entry.kernel = entry.label; // syslinux boots the label's name when no LINUX is given
  const chosen = defaultLabel ?? onTimeout ?? menuDefault ?? entries[0]?.label;
  if (chosen === undefined)
    throw new RamrootError("input", "syslinux config: no DEFAULT and no LABEL; expected at least one LABEL entry");
  const spec: SyslinuxConfigSpec = { defaultLabel: chosen, timeout, prompt, serial, entries };
  return spec;
}

function splitInitrd(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function parseNumber(text: string, what: string): number {
  const value = /^0x[0-9a-f]+$/i.test(text) ? Number.parseInt(text, 16) : Number(text);
  if (!Number.isInteger(value)) throw new FieldError(what, `got ${JSON.stringify(text)}; expected a whole number`);
  return value;
}

/** Directories where ldlinux.sys is looked for, in order ("" = the partition root). */
const LDLINUX_DIRS = ["", "boot/syslinux", "syslinux", "boot/extlinux", "extlinux", "boot"];
const CONFIG_NAMES = ["extlinux.conf", "syslinux.cfg"];

/** The directory holding ldlinux.sys, or undefined when none of the usual places has it. */
export async function findLdlinuxDir(target: BootTarget): Promise<string | undefined> {
  return ldlinuxDirIn(LDLINUX_DIRS, await listDirectories(target, LDLINUX_DIRS));
}

function ldlinuxDirIn(dirs: readonly string[], listed: string[][]): string | undefined {
  return dirs.find((_, i) => listed[i]?.some((name) => name.toLowerCase() === "ldlinux.sys"));
}

function joinRel(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

/**
 * The file syslinux 6.04 will read its config from: extlinux.conf, then syslinux.cfg, first in
 * the directory holding ldlinux.sys, then /boot/syslinux, /syslinux and / (core/fs/lib/loadconfig.c).
 * When none exists yet: syslinux.cfg next to ldlinux.sys, or at the root.
 */
export async function findSyslinuxConfigPath(target: BootTarget): Promise<string> {
  // Every directory either search looks in is one of LDLINUX_DIRS: one look at all of them.
  const listed = await listDirectories(target, LDLINUX_DIRS);
  const ldlinuxDir = ldlinuxDirIn(LDLINUX_DIRS, listed);
  const dirs = [...new Set([ldlinuxDir ?? "", "boot/syslinux", "syslinux", ""])];
  for (const dir of dirs) {
    const names = listed[LDLINUX_DIRS.indexOf(dir)] ?? [];
    for (const name of CONFIG_NAMES) {
      const found = names.find((n) => n.toLowerCase() === name);
      if (found !== undefined) return joinRel(dir, found);
    }
  }
  return joinRel(ldlinuxDir ?? "", "syslinux.cfg");
}

/**
 * Why a mounted-directory or ssh target's directory is not a syslinux boot partition, or undefined
 * when it is one: syslinux is installed there (ldlinux.sys) or a config is (syslinux.cfg,
 * extlinux.conf), where syslinux looks. A path that holds neither is most likely not where the
 * partition is mounted (a typo, or the machine's RAM root): writing slots there would boot
 * nothing. A disk image's FAT is read from its own boot sector and needs no such check.
 */
export async function bootPartitionProblem(target: BootTarget): Promise<string | undefined> {
  if (target.spec.kind === "image") return undefined;
  const listed = await listDirectories(target, LDLINUX_DIRS);
  if (ldlinuxDirIn(LDLINUX_DIRS, listed) !== undefined) return undefined;
  if (listed.some((names) => names.some((n) => CONFIG_NAMES.includes(n.toLowerCase())))) return undefined;
  const top = listed[0] ?? [];
  const found =
    top.length === 0
      ? "nothing (the directory is empty or does not exist)"
      : `${top.slice(0, 12).join(", ")}${top.length > 12 ? ` and ${top.length - 12} more` : ""}`;
  return (
    `target.path: ${target.describe()} holds neither ldlinux.sys nor syslinux.cfg (nor extlinux.conf; looked in ${LDLINUX_DIRS.map((d) => `/${d}`).join(", ")}); found there: ${found}; ` +
    "expected the directory the boot partition is mounted on, with syslinux installed (`ramroot disk create`, or `extlinux --install <dir>`)"
  );
}

/** More than any config syslinux is given (a few KiB); a larger file is refused unread. */
const SYSLINUX_CONFIG_MAX_BYTES = 1 << 20;

/** The config syslinux will use, parsed; undefined when there is none. */
export async function readSyslinuxConfig(
  target: BootTarget,
): Promise<{ path: string; text: string; spec: SyslinuxConfigSpec } | undefined> {
  const path = await findSyslinuxConfigPath(target);
  const data = await target.readFile(path, { maxBytes: SYSLINUX_CONFIG_MAX_BYTES });
  if (data === undefined) return undefined;
  const text = data.toString("utf8");
  return { path, text, spec: parseSyslinuxConfig(text) };
}

export interface WriteConfigOptions {
  /**
   * Compare-and-swap: the sha256 of the config as the writer read it (null: there was none).
   * The file is read again right before the write; if it changed, nothing is written.
   */
  expectedSha256?: string | null;
  /** runs right before the write (a lease check) */
  beforeCommit?: () => Promise<void>;
}

/** Renders and atomically replaces the config syslinux reads. Returns where it went and the sha256 of the text. */
export async function writeSyslinuxConfig(
  target: BootTarget,
  spec: SyslinuxConfigSpec,
  opts: WriteConfigOptions = {},
): Promise<{ path: string; sha256: string }> {
  const text = renderSyslinuxConfig(spec);
  const path = await findSyslinuxConfigPath(target);
  await opts.beforeCommit?.();
  if (opts.expectedSha256 !== undefined) {
    const now = await target.readFile(path);
    const nowSha = now === undefined ? null : sha256Hex(now);
    if (nowSha !== opts.expectedSha256) {
      const nowDefault =
        now === undefined ? "no config" : `DEFAULT ${parseSyslinuxConfig(now.toString("utf8")).defaultLabel}`;
      throw new ConflictError(
        `${target.describe()}: ${path} changed since it was read (now ${nowDefault}): another writer switched it; nothing was written, run the deploy again`,
      );
    }
  }
  await target.writeFileAtomic(path, text);
  return { path, sha256: sha256Hex(text) };
}
