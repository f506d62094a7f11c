import type { Command } from "commander";
import { registerQemuCommands } from "./qemu-command";
import { registerApkCommands } from "./apk-command";
import { registerPkgCommands } from "./pkg-command";
import { registerBuildCommands } from "./build-command";
import { registerStackCommands } from "./stack-command";
import { registerBootCommands } from "./boot-command";
import { registerImageCommands } from "./image-command";
import { registerVmCommands } from "./vm-command";
import { registerInitCommands } from "./init-command";

/** Every area's verbs. A new area adds one line here and keeps its verbs in its own file. */
export function registerCommands(program: Command): void {
  registerQemuCommands(program);
  registerApkCommands(program);
  registerPkgCommands(program);
  registerBuildCommands(program);
  registerStackCommands(program);
  registerBootCommands(program);
  registerImageCommands(program);
  registerVmCommands(program);
  registerInitCommands(program);
}
