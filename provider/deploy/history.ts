/**
 * The stack's history as ramroot numbers it, shared by `ramroot history|status|rollback` and
 * the engine tests. Every page is read (the CLI shows one page unless asked), entries are
 * ordered by start time, and only updates (`pulumi up`, a rollback) are numbered: 1 is the
 * stack's first update, and a number never changes once given, because history only grows at
 * its end and refreshes, destroys and imports take no number. Where the backend numbers its
 * operations itself (a service backend's version), that number is used as it is; the file
 * backend stores version 0 for every entry.
 */
import type { Stack, UpdateSummary } from "@pulumi/pulumi/automation";
import type { JournalEntry } from "../boot/journal";

export const HISTORY_PAGE_SIZE = 100;

export interface StackUpdate {
  /** the number `ramroot history` shows; undefined for what is not an update (refresh, destroy, import) */
  number?: number;
  kind: string;
  result: string;
  startTime: string;
  endTime?: string;
  message: string;
  /** the checkout's git commit, "+dirty" when it had uncommitted changes */
  commit?: string;
}

/** Every entry of the stack's history, every page, in the order the backend gives them. */
export async function readHistory(
  stack: Pick<Stack, "history">,
  pageSize = HISTORY_PAGE_SIZE,
): Promise<UpdateSummary[]> {
  const all: UpdateSummary[] = [];
  for (let page = 1; ; page++) {
    const entries = await stack.history(pageSize, page, false);
    all.push(...entries);
    if (entries.length < pageSize) return all;
  }
}

function commitOf(h: UpdateSummary): string | undefined {
  const head = h.environment?.["git.head"];
  if (!head) return undefined;
  return h.environment?.["git.dirty"] === "true" ? `${head}+dirty` : head;
}

/** Numbers the history (see the module comment); oldest first. */
export function numberHistory(entries: readonly UpdateSummary[]): StackUpdate[] {
  const versioned = entries.some((h) => h.version > 0);
  const time = (t: Date | string) => new Date(t).getTime();
  const sorted = [...entries].sort((a, b) => time(a.startTime) - time(b.startTime) || a.version - b.version);
  let n = 0;
  return sorted.map((h) => {
    const number = versioned ? h.version : h.kind === "update" ? ++n : undefined;
    const commit = commitOf(h);
    return {
      ...(number !== undefined ? { number } : {}),
      kind: h.kind,
      result: h.result,
      startTime: new Date(h.startTime).toISOString(),
      ...(h.endTime ? { endTime: new Date(h.endTime).toISOString() } : {}),
      message: h.message,
      ...(commit ? { commit } : {}),
    };
  });
}

/** The stack's updates, numbered, all pages read. */
export async function stackHistory(stack: Pick<Stack, "history">): Promise<StackUpdate[]> {
  return numberHistory(await readHistory(stack));
}

const SLACK_MS = 1000;

/** What DEFAULT booted when `update` ended: the last switch the target's journal records before then. */
export function deployedBy(update: StackUpdate, journal: readonly JournalEntry[]): JournalEntry | undefined {
  const end = Date.parse(update.endTime ?? update.startTime) + SLACK_MS;
  return [...journal].reverse().find((e) => Date.parse(e.when) <= end);
}

/** The update during which something was written at `when` (a journal entry's switch, a slot's manifest). */
export function updateOf(entry: Pick<JournalEntry, "when">, history: readonly StackUpdate[]): StackUpdate | undefined {
  const when = Date.parse(entry.when);
  return history.find(
    (h) =>
      h.number !== undefined &&
      Date.parse(h.startTime) <= when &&
      when <= Date.parse(h.endTime ?? new Date().toISOString()) + SLACK_MS,
  );
}
