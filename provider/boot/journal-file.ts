/** Where the deployment journal lives on a boot partition (journal.ts reads and writes it; slot.ts quotes its last entry). */
export const JOURNAL_PATH = "ramroot/journal.json";
/** The journal as it was before the last append: what a damaged journal is restored from. */
export const JOURNAL_BACKUP_PATH = "ramroot/journal.json.bak";
