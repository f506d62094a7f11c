/**
 * Each stack's own passphrase: a stack whose secrets need one has it in
 * `.ramroot/passphrases/<stack>` (the demo's, written by `npm start`; the lab's, by
 * scripts/nas-lab.sh), or the owner gives theirs in PULUMI_CONFIG_PASSPHRASE(_FILE). No
 * passphrase is set for every stack, so a new stack's secrets are never encrypted with the
 * demo's (which the README prints).
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Where a stack's passphrase file is kept in the project. */
export function passphraseFile(projectDir: string, stack: string): string {
  return path.join(projectDir, ".ramroot", "passphrases", stack);
}

/** What pulumi needs for `stack`: nothing when the shell names a passphrase, else the stack's own file if it has one. */
export function stackPassphraseEnv(projectDir: string, stack: string): Record<string, string> {
  if (process.env.PULUMI_CONFIG_PASSPHRASE !== undefined || process.env.PULUMI_CONFIG_PASSPHRASE_FILE !== undefined)
    return {};
  const file = passphraseFile(projectDir, stack);
  return fs.existsSync(file) ? { PULUMI_CONFIG_PASSPHRASE_FILE: file } : {};
}
