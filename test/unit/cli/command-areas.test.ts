import { Command } from "commander";
import { COMMAND_AREAS } from "../../../provider/cli/commands";
import { buildProgram } from "../../../provider/cli/main";

// `ramroot VERB` loads only the areas that add to VERB (provider/cli/commands.ts): each area must
// say exactly which top-level words it adds or adds to, or a verb would be missing when it runs.

const verbsOf = (program: Command) => program.commands.map((c) => c.name()).sort();

test.each(COMMAND_AREAS.map((area, i) => [i, area]))("area %i adds exactly the verbs it lists", (_, area) => {
  const program = new Command("ramroot");
  area.load()(program);
  expect(verbsOf(program)).toEqual([...area.verbs].sort());
});

test("a verb's program is its areas' whole tree; anything else gets every verb", () => {
  const every = verbsOf(buildProgram());
  expect(every).toEqual([...new Set(COMMAND_AREAS.flatMap((a) => a.verbs))].sort());
  expect(verbsOf(buildProgram("build"))).toEqual(["build"]);
  // two areas add to `apk`: both are loaded, so `ramroot apk` lists all of its verbs
  expect(verbsOf(buildProgram("apk"))).toEqual(["apk", "key", "pkg", "repo"]);
  const apkVerbs = (p: Command) => verbsOf(p.commands.find((c) => c.name() === "apk")!);
  expect(apkVerbs(buildProgram("apk"))).toEqual(apkVerbs(buildProgram()));
  for (const other of [undefined, "help", "biuld"]) expect(verbsOf(buildProgram(other))).toEqual(every);
});
