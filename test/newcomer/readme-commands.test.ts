import * as fs from "node:fs";
import * as path from "node:path";
import type { Command } from "commander";
import { buildProgram } from "../../provider/cli/main";
import { abSystemSchemaInputs } from "../../provider/deploy/ab-system-inputs";
import { imageConfigSchema } from "../../provider/image/image-config";

// The reference lines against what they describe: the command-line table (docs/commands.md)
// against the program `npx ramroot` runs (every verb a row names exists, `slot write|show` as two,
// and every flag it shows is one that verb or the program accepts), and the README's input lists
// against the zod schemas that validate them. A verb renamed, a flag dropped or an input added
// fails here.

const ROOT = path.resolve(__dirname, "..", "..");
const README = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
const COMMANDS = fs.readFileSync(path.join(ROOT, "docs", "commands.md"), "utf8");

/** The first cell of every row of the command table in docs/commands.md, its code spans unescaped. */
function tableSpans(): string[] {
  const section = COMMANDS.slice(COMMANDS.indexOf("| verb |"), COMMANDS.indexOf("\n\n", COMMANDS.indexOf("| verb |")));
  return section
    .split("\n")
    .filter((l) => l.startsWith("| `"))
    .flatMap((l) => {
      const cell = l.split(/(?<!\\)\|/)[1] ?? "";
      return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\\\|/g, "|"));
    });
}

/** The verb paths a span names: leading lower-case words, `a|b` as alternatives. */
function verbPaths(span: string): string[][] {
  let paths: string[][] = [[]];
  for (const token of span.split(/\s+/)) {
    if (!/^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*$/.test(token)) break;
    paths = paths.flatMap((p) => token.split("|").map((alt) => [...p, alt]));
  }
  return paths;
}

/**
 * The command a verb path names. A last word that is no subcommand may be an action argument
 * the command documents (`vm stop`: `[action]`, "stop: ..."), which then names the command itself.
 */
function find(program: Command, names: string[]): Command | undefined {
  let at: Command = program;
  for (const [i, name] of names.entries()) {
    const sub = at.commands.find((c) => c.name() === name);
    if (sub) {
      at = sub;
      continue;
    }
    const action = i === names.length - 1 && at.registeredArguments.some((a) => a.description.startsWith(`${name}:`));
    return action ? at : undefined;
  }
  return at;
}

function accepts(command: Command, flag: string): boolean {
  for (let c: Command | null = command; c; c = c.parent)
    if (c.options.some((o) => o.long === flag || o.short === flag)) return true;
  return false;
}

const spans = tableSpans();

test("the command table has the verbs a newcomer looks for", () => {
  expect(spans.length).toBeGreaterThan(20);
  const first = new Set(spans.map((s) => s.split(/\s+/)[0]));
  for (const verb of [
    "init",
    "build",
    "apk",
    "disk",
    "slot",
    "syslinux",
    "status",
    "history",
    "rollback",
    "image",
    "vm",
  ])
    expect(first).toContain(verb);
});

test.each(spans)("`%s`: the verb exists and takes every flag shown", (span) => {
  const program = buildProgram();
  for (const names of verbPaths(span)) {
    const command = find(program, names);
    expect([names.join(" "), command !== undefined]).toEqual([names.join(" "), true]);
    const flags = [...span.matchAll(/(?<![\w-])(--?[a-z][a-z-]*)/g)].map((m) => m[1]!);
    for (const flag of flags)
      expect([names.join(" "), flag, accepts(command!, flag)]).toEqual([names.join(" "), flag, true]);
  }
});

// The README's input lists against the zod schemas that validate them: a key added to a schema
// without a README line, or a README line for a key that is gone, fails here.

/** The first-column keys of the table that follows `heading` (up to the next blank line after it). */
function tableKeys(heading: string): string[] {
  const from = README.indexOf(heading);
  expect(from).toBeGreaterThan(-1);
  const table = README.slice(from)
    .split("\n\n")
    .find((block) => block.startsWith("| "));
  return [...(table ?? "").matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]!).sort();
}

test("the AlpineImage input table names exactly the image config's keys", () => {
  expect(tableKeys("### `AlpineImage`")).toEqual(Object.keys(imageConfigSchema.in.shape).sort());
});

test("the A/B component's signature names exactly its inputs", () => {
  const signature = /`new AbSystem\(name, \{([^}]*)\}\)`/.exec(README)?.[1] ?? "";
  const named = signature.split(",").map((k) => k.trim().replace(/\?$/, ""));
  expect(named.sort()).toEqual(Object.keys(abSystemSchemaInputs.shape).sort());
  // optional in the README exactly when the schema does not require it
  const optional = signature
    .split(",")
    .map((k) => k.trim())
    .filter((k) => k.endsWith("?"))
    .map((k) => k.slice(0, -1));
  expect(optional.sort()).toEqual(
    Object.entries(abSystemSchemaInputs.shape)
      .filter(([, s]) => s.safeParse(undefined).success)
      .map(([k]) => k)
      .sort(),
  );
});

test("the Configuration table names exactly the stack config keys the machine program reads", () => {
  const program = fs.readFileSync(path.join(ROOT, "components", "machine-program.ts"), "utf8");
  const read = [...program.matchAll(/config\.(?:get|require)\w*(?:<[^>]*>)?\("([A-Za-z]+)"\)/g)].map((m) => m[1]!);
  expect(read).toEqual(expect.arrayContaining(["target", "image", "strategy", "bootTest"]));
  expect(tableKeys("## Configuration")).toEqual([...new Set(read)].sort());
});

test("the README sends a reader only to pages of this repository, and each one is there", () => {
  expect(README).not.toMatch(/\]\((https?:|\/|\.\.)/);
  const pages = [...README.matchAll(/`(docs\/[a-z-]+\.md)`/g)].map((m) => m[1]!);
  expect(new Set(pages).size).toBeGreaterThan(6);
  for (const page of pages) expect([page, fs.existsSync(path.join(ROOT, page))]).toEqual([page, true]);
});
