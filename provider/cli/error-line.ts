/**
 * What `ramroot` prints when a verb fails: one line that says what is wrong and, where there is
 * one, the command that fixes it. The Automation API's errors carry pulumi's whole command
 * line, stdout and stderr; the cause is one line of that, and `--verbose` prints all of it.
 */

interface Known {
  match: RegExp;
  line: (m: RegExpMatchArray) => string;
}

const KNOWN: Known[] = [
  {
    match: /incorrect passphrase|failed to decrypt|could not decrypt/i,
    line: () =>
      "the passphrase given does not open this stack's secrets: set PULUMI_CONFIG_PASSPHRASE (or _FILE) to the one the stack was made with (the demo stack's is in .ramroot/passphrases/demo)",
  },
  {
    match:
      /passphrase must be set|PULUMI_CONFIG_PASSPHRASE(_FILE)? (environment variable )?(is )?(not set|must be set)/i,
    line: () =>
      "the stack's secrets need a passphrase and none is set: set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the one the stack was made with (the demo stack's is in .ramroot/passphrases/demo, which `npm start` writes)",
  },
  {
    match: /no stack named '([^']+)' found/,
    line: (m) =>
      `no stack "${m[1]}" in this project: \`npm start\` creates the demo stack; for another one, \`pulumi stack init ${m[1]}\` (see \`pulumi stack ls\`)`,
  },
  {
    match: /the pulumi CLI is not installed|spawn pulumi ENOENT|pulumi: (command )?not found|Failed to find pulumi/i,
    line: () => "the pulumi CLI is not on PATH: run `npm run setup`, then `source .ramroot/env.sh`",
  },
  {
    match: /the stack is currently locked|ConcurrentUpdateError|\[409\] Conflict/i,
    line: () =>
      "another pulumi update of this stack is running (or one was killed): wait for it, or `pulumi cancel` / `pulumi stack export | pulumi stack import` after a killed one",
  },
];

/** The text of an error, as much of it as there is (message, Automation API stderr). */
export function fullText(err: unknown): string {
  if (err instanceof Error) return err.stack ?? err.message;
  return String(err);
}

/** pulumi's own "error: ..." line out of an Automation API error, if there is one. */
function pulumiErrorLine(text: string): string | undefined {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  return lines.find((l) => /^error: /.test(l))?.replace(/^error: /, "");
}

/** What is wrong and the command that fixes it where one is known: one line for pulumi's errors. */
export function errorLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  for (const k of KNOWN) {
    const m = text.match(k.match);
    if (m) return k.line(m);
  }
  if (/^code: -?\d+\s*\n?\s*stdout:/.test(text) || /Command failed with exit code \d+: pulumi /.test(text)) {
    const line = pulumiErrorLine(text);
    const cmd = /Command failed with exit code \d+: (pulumi [^\n]*)/.exec(text)?.[1];
    return `${line ?? "pulumi failed"}${cmd ? ` (in \`${cmd.replace(/ --non-interactive$/, "")}\`; --verbose shows its output)` : ""}`;
  }
  // ramroot's own errors already say field, value and what is accepted (several lines when
  // several fields are wrong): they are printed as they are.
  return text;
}
