/**
 * What the engine tests of secrets over an ssh target share (the target itself is
 * test/boot/sshd.ts's `sshTarget`): the stack's state files as text, `pulumi stack export` as a
 * user runs it (without --show-secrets), and the check that a key is in none of them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { execa } from "execa";
import { pulumiCommand, type EngineStack } from "./pulumi-harness";

/** Every file of the stack's file backend, as one text. */
export function stateText(env: EngineStack): string {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(fs.readFileSync(p, "latin1"));
    }
  };
  walk(path.join(env.dir, "state"));
  return out.join("\n");
}

/** `pulumi stack export` as a user runs it (the Automation API's exportStack shows secrets). */
export async function exportAsUser(env: EngineStack): Promise<string> {
  const result = await execa((await pulumiCommand()).command, ["stack", "export", "--stack", env.stack.name], {
    cwd: env.dir,
    env: {
      PULUMI_BACKEND_URL: `file://${path.join(env.dir, "state")}`,
      PULUMI_CONFIG_PASSPHRASE: "test",
      PULUMI_SKIP_UPDATE_CHECK: "true",
    },
  });
  return result.stdout;
}

/** The body lines of a private key: none of them may appear anywhere a secret must not. */
export function keyLines(key: string): string[] {
  const lines = key.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("-----"));
  if (lines.length <= 2) throw new Error("a private key of more than two body lines was expected");
  return lines;
}

/** Expects no line of the key in the text. */
export function expectNoKey(text: string, key: string): void {
  for (const line of keyLines(key)) expect(text).not.toContain(line);
}
