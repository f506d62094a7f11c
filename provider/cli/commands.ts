import type { Command } from "commander";
import { registerQemuCommands } from "./qemu-command";

/** Every area's verbs. A new area adds one line here and keeps its verbs in its own file. */
export function registerCommands(program: Command): void {
  registerQemuCommands(program);
}
