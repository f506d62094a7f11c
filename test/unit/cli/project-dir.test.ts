import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findProjectDir } from "../../../provider/project-dir";

test("the project is the nearest directory at or above the shell's with Pulumi.yaml; none is an error naming where it looked", () => {
  const top = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "ramroot-project-")));
  try {
    const project = path.join(top, "nas");
    fs.mkdirSync(path.join(project, "root", "etc", "ramroot"), { recursive: true });
    fs.writeFileSync(path.join(project, "Pulumi.yaml"), "name: nas\nruntime: nodejs\n");
    expect(findProjectDir(project)).toBe(project);
    expect(findProjectDir(path.join(project, "root", "etc", "ramroot"))).toBe(project);
    expect(() => findProjectDir(top)).toThrow(
      `no Pulumi project at or above ${top} (no Pulumi.yaml); run ramroot inside the project, or give --cwd <project dir>`,
    );
  } finally {
    fs.rmSync(top, { recursive: true, force: true });
  }
});
