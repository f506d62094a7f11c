// First: keeps V8's young generation small before any module loads.
import "../young-generation";
import { Command, CommanderError } from "commander";
import { registerCommands } from "./commands";
import { errorLine, fullText } from "./error-line";
import { didYouMean } from "../similar-name";

/** The words that name a command from the top: "ramroot slot show". */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

/**
 * A usage error (a flag missing or unknown, an extra argument, an unknown verb) is one line that
 * names the command and where its usage is: `ramroot slot show: required option '--slot <name>'
 * not specified (see \`ramroot slot show --help\`)`. Every command of the tree says so for itself.
 */
function oneLineUsageErrors(cmd: Command): void {
  cmd.configureOutput({
    outputError: (text, write) => {
      const message = text
        .trim()
        .replace(/^error: /, "")
        .replace(/\s*\n\s*/g, " ");
      write(`${commandPath(cmd)}: ${message} (see \`${commandPath(cmd)} --help\`)\n`);
    },
  });
  // A group of verbs given none (`ramroot image`) says which it has, instead of its whole help.
  const verbs = cmd.commands.map((c) => c.name()).filter((n) => n !== "help");
  if (cmd.parent && verbs.length > 0)
    cmd.allowExcessArguments().action(() => {
      const word = cmd.args[0];
      cmd.error(
        word === undefined
          ? `expected a command: ${verbs.join(", ")}`
          : `unknown command '${word}'${didYouMean(word, verbs)}; expected one of ${verbs.join(", ")}`,
      );
    });
  for (const sub of cmd.commands) oneLineUsageErrors(sub);
}

/** The verb `argv` runs (`build` in `ramroot --verbose build x.yaml`): its first word that is no option. */
function verbOf(argv: string[]): string | undefined {
  for (const arg of argv.slice(2)) {
    if (arg === "--") return undefined;
    if (!arg.startsWith("-")) return arg;
  }
  return undefined;
}

/**
 * Builds the `ramroot` command tree. Each area adds its verbs in its own module; with `verb`,
 * only the areas that add to it are loaded (commands.ts), otherwise all.
 */
export function buildProgram(verb?: string): Command {
  const program = new Command("ramroot")
    .description("Build a whole Alpine Linux machine into one initramfs and deploy it to A/B syslinux slots")
    .option("--verbose", "on failure, print the whole error (pulumi's output, stack trace) instead of one line")
    .exitOverride();
  registerCommands(program, verb);
  oneLineUsageErrors(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram(verbOf(argv));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    const verbose = program.opts<{ verbose?: boolean }>().verbose === true || argv.includes("--verbose");
    process.stderr.write(`ramroot: ${verbose ? fullText(err) : errorLine(err)}\n`);
    process.exitCode = 1;
  }
}
