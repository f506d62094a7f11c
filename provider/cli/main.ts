import { Command, CommanderError } from "commander";
import { registerCommands } from "./commands";
import { errorLine, fullText } from "./error-line";

/** Builds the `ramroot` command tree. Each area adds its verbs in its own module. */
export function buildProgram(): Command {
  const program = new Command("ramroot")
    .description("Build a whole Alpine Linux machine into one initramfs and deploy it to A/B syslinux slots")
    .option("--verbose", "on failure, print the whole error (pulumi's output, stack trace) instead of one line")
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
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
