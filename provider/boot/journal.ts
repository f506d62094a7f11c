/**
 * The deployment journal on the boot partition: one entry each time DEFAULT changes, saying
 * which slot and which image it now boots. It lives with the machine, so `ramroot status` and
 * `ramroot rollback` can tell what each stack update deployed from any checkout.
 */
import type { BootTarget } from "./boot-target";
import { defaultSlotOf, readSlot } from "./slot";
import { readSyslinuxConfig } from "./syslinux-config";

export const JOURNAL_PATH = "ramroot/journal.json";
const KEEP = 500;

export interface JournalEntry {
  /** ISO time of the switch */
  when: string;
  /** the DEFAULT label */
  label: string;
  slot?: string;
  imageId?: string;
  planId?: string;
  /** "switch", "trial" or "rollback" */
  how: string;
}

export async function readJournal(target: BootTarget): Promise<JournalEntry[]> {
  const raw = await target.readFile(JOURNAL_PATH);
  if (raw === undefined) return [];
  try {
    const parsed = JSON.parse(raw.toString("utf8")) as { entries?: JournalEntry[] };
    return Array.isArray(parsed.entries) ? parsed.entries : [];
  } catch {
    return [];
  }
}

/** What DEFAULT boots now: the label, its slot and the image the slot's manifest names. */
export async function currentDefault(target: BootTarget): Promise<Omit<JournalEntry, "when" | "how"> | undefined> {
  const config = await readSyslinuxConfig(target);
  if (!config) return undefined;
  const slot = defaultSlotOf(config);
  const state = slot ? await readSlot(target, slot) : undefined;
  return {
    label: config.spec.defaultLabel,
    ...(slot ? { slot } : {}),
    ...(state?.manifest ? { imageId: state.manifest.imageId, planId: state.manifest.planId } : {}),
  };
}

/** Records what DEFAULT boots now (atomic replace; the newest KEEP entries are kept). */
export async function recordDefault(target: BootTarget, how: string, when = new Date().toISOString()): Promise<JournalEntry | undefined> {
  const now = await currentDefault(target);
  if (!now) return undefined;
  const entry: JournalEntry = { when, ...now, how };
  const entries = [...(await readJournal(target)), entry].slice(-KEEP);
  await target.writeFileAtomic(JOURNAL_PATH, JSON.stringify({ entries }, null, 2) + "\n");
  return entry;
}
