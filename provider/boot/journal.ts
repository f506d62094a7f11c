/**
 * The deployment journal on the boot partition: one entry each time DEFAULT changes, saying
 * which slot and which image it now boots. It lives with the machine, so `ramroot status` and
 * `ramroot rollback` can tell what each stack update deployed from any checkout.
 */
import type { BootTarget } from "./boot-target";
import { describeHolder, heldLease } from "./lease";
import { defaultSlotOf, readSlot } from "./slot";
import { schemeOf } from "./schemes/registry";
import { TargetError } from "../ramroot-error";

/** Where the deployment journal lives on a boot partition. */
export const JOURNAL_PATH = "ramroot/journal.json";
/** The journal as it was before the last append: what a damaged journal is restored from. */
export const JOURNAL_BACKUP_PATH = "ramroot/journal.json.bak";

const KEEP = 500;

export interface JournalEntry {
  /** ISO time of the switch */
  when: string;
  /** the DEFAULT label */
  label: string;
  slot?: string;
  imageId?: string;
  planId?: string;
  /** "switch", "trial", "rollback", or "back to the running slot" (before a never-booted DEFAULT slot is rewritten) */
  how: string;
  /** who held the target's lease when DEFAULT changed, e.g. `"pulumi up: ..." (user root, pid 12 on host nas, since ...)` */
  by?: string;
  /** a rollback: the stack update it went back to (`ramroot history` numbers) */
  update?: number;
  /** the gates the switch ran under: a boot test in QEMU, a trial boot (a later deploy drops them only explicitly) */
  gates?: { bootTest: boolean; trial: boolean };
}

function parseJournal(raw: Buffer): JournalEntry[] | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch (err) {
    return `it is not JSON (${(err as Error).message})`;
  }
  const entries = (parsed as { entries?: unknown }).entries;
  if (!Array.isArray(entries)) return 'it has no "entries" list';
  const bad = entries.findIndex(
    (e) =>
      typeof e !== "object" ||
      e === null ||
      typeof (e as JournalEntry).when !== "string" ||
      typeof (e as JournalEntry).label !== "string",
  );
  if (bad >= 0) return `entry ${bad} has no "when" and "label"`;
  return entries as JournalEntry[];
}

/**
 * The journal's entries, oldest first; [] when there is none. A damaged journal is an error, never
 * read as empty: replacing it would lose the history that status and rollback stand on.
 */
export async function readJournal(target: BootTarget): Promise<JournalEntry[]> {
  const raw = await target.readFile(JOURNAL_PATH);
  if (raw === undefined) return [];
  const entries = parseJournal(raw);
  if (typeof entries !== "string") return entries;
  const backup = await target.readFile(JOURNAL_BACKUP_PATH);
  const backupEntries = backup === undefined ? undefined : parseJournal(backup);
  const way =
    backupEntries !== undefined && typeof backupEntries !== "string"
      ? `${JOURNAL_BACKUP_PATH} holds the journal before its last entry (${backupEntries.length} entries): copy it over ${JOURNAL_PATH} to go on`
      : `no intact backup (${JOURNAL_BACKUP_PATH}) exists: move ${JOURNAL_PATH} aside to start a new history`;
  throw new TargetError(
    `${target.describe()}: the deployment journal ${JOURNAL_PATH} is damaged (${entries}); nothing was changed. ${way}`,
  );
}

/** What DEFAULT boots now: the label, its slot and the image the slot's manifest names. */
export async function currentDefault(target: BootTarget): Promise<Omit<JournalEntry, "when" | "how"> | undefined> {
  const config = await (await schemeOf(target)).readConfig(target);
  if (!config) return undefined;
  const slot = defaultSlotOf(config);
  const state = slot ? await readSlot(target, slot) : undefined;
  return {
    label: config.spec.defaultLabel,
    ...(slot ? { slot } : {}),
    ...(state?.manifest ? { imageId: state.manifest.imageId, planId: state.manifest.planId } : {}),
  };
}

/**
 * Records what DEFAULT boots now: the current journal is first kept as the backup, then the
 * journal is replaced atomically (the newest KEEP entries are kept). A damaged journal stops
 * here with readJournal's error.
 */
export async function recordDefault(
  target: BootTarget,
  how: string,
  when = new Date().toISOString(),
  update?: number,
  gates?: JournalEntry["gates"],
): Promise<JournalEntry | undefined> {
  const now = await currentDefault(target);
  if (!now) return undefined;
  const lease = heldLease(target);
  const entry: JournalEntry = {
    when,
    ...now,
    how,
    ...(lease ? { by: describeHolder(lease.record) } : {}),
    ...(update !== undefined ? { update } : {}),
    ...(gates ? { gates } : {}),
  };
  const previous = await readJournal(target);
  const current = await target.readFile(JOURNAL_PATH);
  if (current !== undefined) await target.writeFileAtomic(JOURNAL_BACKUP_PATH, current);
  const entries = [...previous, entry].slice(-KEEP);
  await target.writeFileAtomic(JOURNAL_PATH, JSON.stringify({ entries }, null, 2) + "\n");
  return entry;
}
