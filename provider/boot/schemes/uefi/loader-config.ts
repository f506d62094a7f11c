/**
 * systemd-boot's configuration on an EFI system partition, as the boot loader spec lays it out:
 * `loader/loader.conf` names the default entry, `loader/entries/<label>.conf` is one Type #1
 * entry per slot (`linux`, one `initrd` line per archive in load order, `options` the command
 * line). systemd-boot 252 takes an entry's id from its file name, lower-cased, ".conf" kept
 * (src/boot/efi/boot.c), and `default` matches ids; so a label is written in lower case.
 *
 * The config as one text (what the switch compares and swaps, what "already holds this config"
 * compares): loader.conf, then each entry file in name order, each under a `#> path` line.
 */
import { sha256Hex } from "../../../file-hash";
import type { BootTarget } from "../../boot-target";
import type { BootConfig, BootConfigSpec, WriteBootConfigOptions } from "../boot-scheme";
import type { SyslinuxEntry } from "../syslinux/config";
import { ConflictError, FieldError } from "../../../ramroot-error";

export const LOADER_DIR = "loader";
export const LOADER_CONF = "loader/loader.conf";
export const ENTRIES_DIR = "loader/entries";

/** More than any loader.conf or entry ramroot writes (a few hundred bytes); a larger file is refused unread. */
const MAX_BYTES = 1 << 16;

function entryFile(label: string): string {
  return `${label.toLowerCase()}.conf`;
}

/** loader.conf: the default, no menu unless a timeout is asked for, no command-line editor at the console. */
function renderLoaderConf(spec: BootConfigSpec): string {
  const seconds = Math.ceil(spec.timeout / 10);
  return `# written by ramroot: the default entry is what boots\ndefault ${entryFile(spec.defaultLabel)}\ntimeout ${seconds}\neditor no\n`;
}

/** An entry that boots a UKI (Secure Boot: a signed one per slot) rather than a kernel and initrds. */
const bootsUki = (entry: SyslinuxEntry) => entry.initrd.length === 0 && entry.kernel.toLowerCase().endsWith(".efi");

function renderEntry(entry: SyslinuxEntry): string {
  // `efi`: systemd-boot starts the UKI; its stub takes `options` only without Secure Boot, and
  // they are the command line baked into it, so the entry reads the same either way.
  const lines = [`title ${entry.menuLabel ?? entry.label}`, `${bootsUki(entry) ? "efi" : "linux"} ${entry.kernel}`];
  for (const initrd of entry.initrd) lines.push(`initrd ${initrd}`);
  lines.push(`options ${entry.append}`);
  return `${lines.join("\n")}\n`;
}

/** The files the spec is written as: path to text (entries by file name). */
function filesOf(spec: BootConfigSpec): Map<string, string> {
  const files = new Map<string, string>([[LOADER_CONF, renderLoaderConf(spec)]]);
  for (const entry of spec.entries) files.set(`${ENTRIES_DIR}/${entryFile(entry.label)}`, renderEntry(entry));
  return files;
}

function joinFiles(files: Map<string, string>): string {
  const entries = [...files.keys()].filter((p) => p !== LOADER_CONF).sort();
  return [LOADER_CONF, ...entries]
    .filter((p) => files.has(p))
    .map((p) => `#> ${p}\n${files.get(p)!}`)
    .join("");
}

export function renderLoaderConfig(spec: BootConfigSpec): string {
  return joinFiles(filesOf(spec));
}

function parseEntry(label: string, text: string): SyslinuxEntry {
  let title: string | undefined;
  let kernel = "";
  const initrd: string[] = [];
  let append = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [key, ...rest] = line.split(/\s+/);
    const value = rest.join(" ");
    if (key === "title") title = value;
    else if (key === "linux" || key === "efi") kernel = value;
    else if (key === "initrd") initrd.push(value);
    else if (key === "options") append = append === "" ? value : `${append} ${value}`;
  }
  return { label, ...(title !== undefined && title !== label ? { menuLabel: title } : {}), kernel, initrd, append };
}

/** The config systemd-boot will read, as one text and a spec; undefined when loader.conf names no default. */
export async function readLoaderConfig(target: BootTarget): Promise<BootConfig | undefined> {
  const files = new Map<string, string>();
  const loader = await target.readFile(LOADER_CONF, { maxBytes: MAX_BYTES });
  if (loader === undefined) return undefined;
  files.set(LOADER_CONF, loader.toString("utf8"));
  const defaultId = /^default\s+(\S+)\s*$/m.exec(files.get(LOADER_CONF)!)?.[1];
  const timeout = Number(/^timeout\s+(\d+)\s*$/m.exec(files.get(LOADER_CONF)!)?.[1] ?? "0");
  const entries: SyslinuxEntry[] = [];
  for (const name of await target.list(ENTRIES_DIR)) {
    if (!name.toLowerCase().endsWith(".conf")) continue;
    const text = (await target.readFile(`${ENTRIES_DIR}/${name}`, { maxBytes: MAX_BYTES }))?.toString("utf8");
    if (text === undefined) continue;
    files.set(`${ENTRIES_DIR}/${name}`, text);
    entries.push(parseEntry(name.slice(0, -".conf".length), text));
  }
  if (defaultId === undefined && entries.length === 0) return undefined;
  const defaultLabel = defaultId?.replace(/\.conf$/i, "") ?? "";
  return {
    path: LOADER_CONF,
    text: joinFiles(files),
    spec: { defaultLabel, timeout: timeout * 10, serial: false, entries },
  };
}

/**
 * Writes the entries (each file atomically), then loader.conf, whose `default` line is the
 * switch, then removes entry files the spec lacks: at every moment the default names an entry
 * that is on the partition. Compare-and-swap against the whole config text as read.
 */
export async function writeLoaderConfig(
  target: BootTarget,
  spec: BootConfigSpec,
  opts: WriteBootConfigOptions = {},
): Promise<{ path: string; sha256: string }> {
  for (const entry of spec.entries) {
    if (entry.label !== entry.label.toLowerCase())
      throw new FieldError(
        "entries",
        `label ${JSON.stringify(entry.label)} has capitals; systemd-boot lower-cases entry ids, so a UEFI boot partition takes lower-case labels (${JSON.stringify(entry.label.toLowerCase())})`,
      );
  }
  if (!spec.entries.some((e) => e.label === spec.defaultLabel))
    throw new FieldError(
      "defaultLabel",
      `got ${JSON.stringify(spec.defaultLabel)}; expected one of the entries: ${spec.entries.map((e) => e.label).join(", ")}`,
    );
  const files = filesOf(spec);
  await opts.beforeCommit?.();
  const now = await readLoaderConfig(target);
  if (opts.expectedSha256 !== undefined) {
    const nowSha = now === undefined ? null : sha256Hex(now.text);
    if (nowSha !== opts.expectedSha256)
      throw new ConflictError(
        `${target.describe()}: ${LOADER_CONF} or its entries changed since they were read (now default ${now?.spec.defaultLabel || "none"}): another writer switched it; nothing was written, run the deploy again`,
      );
  }
  const before = new Map<string, string>();
  if (now) for (const [p, t] of splitFiles(now.text)) before.set(p, t);
  for (const [p, text] of files) if (p !== LOADER_CONF && before.get(p) !== text) await target.writeFileAtomic(p, text);
  if (before.get(LOADER_CONF) !== files.get(LOADER_CONF))
    await target.writeFileAtomic(LOADER_CONF, files.get(LOADER_CONF)!);
  for (const p of before.keys()) if (!files.has(p)) await target.remove(p);
  const text = joinFiles(files);
  return { path: LOADER_CONF, sha256: sha256Hex(text) };
}

function splitFiles(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(/^#> /m).slice(1)) {
    const nl = part.indexOf("\n");
    out.set(part.slice(0, nl), part.slice(nl + 1));
  }
  return out;
}
