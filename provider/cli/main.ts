import { Command, CommanderError } from "commander";
import { registerCommands } from "./commands";

/** Builds the `ramroot` command tree. Each area adds its verbs in its own module. */
export function buildProgram(): Command {
  const program = new Command("ramroot")
    .description("Build a whole Alpine Linux machine into one initramfs and deploy it to A/B syslinux slots")
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
    throw err;
  }
}
