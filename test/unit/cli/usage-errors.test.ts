import { CommanderError } from "commander";
import { buildProgram } from "../../../provider/cli/main";

// A usage error is one line that names the verb and points at its help, never the whole usage
// (issue #22: `syslinux show` and `slot show` printed their whole usage).

async function usageError(...args: string[]): Promise<string> {
  let err = "";
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    err += chunk;
    return true;
  }) as typeof process.stderr.write;
  try {
    await expect(buildProgram().parseAsync(["node", "ramroot", ...args])).rejects.toBeInstanceOf(CommanderError);
  } finally {
    process.stderr.write = write;
  }
  return err;
}

test.each([
  [
    ["slot", "show"],
    "ramroot slot show: required option '--slot <name>' not specified (see `ramroot slot show --help`)",
  ],
  [
    ["syslinux", "show", "--bogus"],
    "ramroot syslinux show: unknown option '--bogus' (see `ramroot syslinux show --help`)",
  ],
  [["stauts"], "ramroot: unknown command 'stauts' (Did you mean status?) (see `ramroot --help`)"],
  [["image"], "ramroot image: expected a command: ls, diff, extract (see `ramroot image --help`)"],
  [
    ["syslinux", "shwo"],
    "ramroot syslinux: unknown command 'shwo'; did you mean \"show\"?; expected one of show, write, set-default, once, clear-once (see `ramroot syslinux --help`)",
  ],
  [
    ["disk", "create", "x.img"],
    "ramroot disk create: required option '--size <MiB>' not specified (an image file needs one; a block device has its own) (see `ramroot disk create --help`)",
  ],
])("ramroot %j: one line", async (args, line) => {
  expect(await usageError(...args)).toBe(`${line}\n`);
});

test("every verb that reads a target takes the stack's when none is named", () => {
  const program = buildProgram();
  const verbs = [
    ["slot", "show"],
    ["slot", "write"],
    ["syslinux", "show"],
    ["syslinux", "write"],
    ["syslinux", "set-default"],
    ["syslinux", "once"],
    ["syslinux", "clear-once"],
    ["image", "ls"],
    ["image", "diff"],
    ["image", "extract"],
    ["status"],
    ["history"],
    ["rollback"],
    ["qemu"],
  ];
  for (const path of verbs) {
    let cmd = program;
    for (const name of path) cmd = cmd.commands.find((c) => c.name() === name)!;
    const stack = cmd.options.find((o) => o.long === "--stack");
    expect({ verb: path.join(" "), default: stack?.defaultValue }).toEqual({ verb: path.join(" "), default: "demo" });
  }
});

test("the stack verbs take the machine's name, and the target verbs --machine", () => {
  const program = buildProgram();
  for (const verb of ["status", "history", "rollback", "release", "qemu"]) {
    const cmd = program.commands.find((c) => c.name() === verb)!;
    expect({ verb, args: cmd.registeredArguments.map((a) => `${a.name()}${a.required ? "" : "?"}`) }).toEqual({
      verb,
      args: ["machine?"],
    });
  }
  const slotShow = program.commands.find((c) => c.name() === "slot")!.commands.find((c) => c.name() === "show")!;
  expect(slotShow.options.map((o) => o.long)).toContain("--machine");
});
