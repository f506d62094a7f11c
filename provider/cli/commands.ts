import type { Command } from "commander";

type Register = (program: Command) => void;

/**
 * One area's verbs: the top-level words it adds or adds to, and how to load its module (only
 * when it is registered). A new area adds one entry here and keeps its verbs in its own file;
 * test/unit/cli/command-areas.test.ts checks that each area adds exactly the words it lists.
 */
interface CommandArea {
  verbs: readonly string[];
  load: () => Register;
}

export const COMMAND_AREAS: readonly CommandArea[] = [
  {
    verbs: ["boot-test"],
    load: () => {
      const { registerQemuCommands }: typeof import("./qemu-command") = require("./qemu-command");
      return registerQemuCommands;
    },
  },
  {
    verbs: ["apk"],
    load: () => {
      const { registerApkCommands }: typeof import("./apk-command") = require("./apk-command");
      return registerApkCommands;
    },
  },
  {
    verbs: ["apk", "key", "pkg", "repo"],
    load: () => {
      const { registerPkgCommands }: typeof import("./pkg-command") = require("./pkg-command");
      return registerPkgCommands;
    },
  },
  {
    verbs: ["build"],
    load: () => {
      const { registerBuildCommands }: typeof import("./build-command") = require("./build-command");
      return registerBuildCommands;
    },
  },
  {
    verbs: ["status", "history", "rollback", "release", "qemu"],
    load: () => {
      const { registerStackCommands }: typeof import("./stack-command") = require("./stack-command");
      return registerStackCommands;
    },
  },
  {
    verbs: ["disk", "slot", "syslinux"],
    load: () => {
      const { registerBootCommands }: typeof import("./boot-command") = require("./boot-command");
      return registerBootCommands;
    },
  },
  {
    verbs: ["image"],
    load: () => {
      const { registerImageCommands }: typeof import("./image-command") = require("./image-command");
      return registerImageCommands;
    },
  },
  {
    verbs: ["vm"],
    load: () => {
      const { registerVmCommands }: typeof import("./vm-command") = require("./vm-command");
      return registerVmCommands;
    },
  },
  {
    verbs: ["init"],
    load: () => {
      const { registerInitCommands }: typeof import("./init-command") = require("./init-command");
      return registerInitCommands;
    },
  },
];

/**
 * Every area's verbs; with `verb`, only those of the areas that add to it, so a command loads
 * its own modules and not every other command's (`ramroot build` starts without execa, the boot
 * targets or the Pulumi automation API). A verb no area names gets them all: the help, and
 * commander's unknown-command error with its suggestion, list every verb.
 */
export function registerCommands(program: Command, verb?: string): void {
  const named = COMMAND_AREAS.filter((a) => verb !== undefined && a.verbs.includes(verb));
  for (const area of named.length > 0 ? named : COMMAND_AREAS) area.load()(program);
}
