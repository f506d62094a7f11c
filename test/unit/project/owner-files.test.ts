import * as fs from "node:fs";
import * as path from "node:path";
import YAML from "yaml";
import { abSystemInputsSchema } from "../../../provider/deploy/ab-system-inputs";
import { BOOT_MARKER, DEFAULT_PACKAGES, ownerFiles, type OwnerRepoSpec } from "../../../provider/project/owner-files";

// What `ramroot init` writes, read back the way the engine reads it: the stack's ramroot: keys
// are valid A/B component inputs (the zod schema the provider validates with), the program
// names the plugin in node_modules, and the boot test waits for a line every image prints.
const ROOT = path.resolve(__dirname, "..", "..", "..");

const base: OwnerRepoSpec = {
  name: "My_NAS",
  stack: "nas",
  program: "typescript",
  ramrootSpec: "^0.1.0",
  repositories: [],
  keys: [],
  packages: DEFAULT_PACKAGES,
  allowScripts: { protobufjs: false },
};

/** The stack file's `ramroot:` keys as the A/B component's inputs. */
function componentInputs(files: Record<string, string>, stack: string): unknown {
  const config = (YAML.parse(files[`stacks/Pulumi.${stack}.yaml`]!) as { config: Record<string, unknown> }).config;
  const inputs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    expect(key).toMatch(/^ramroot:/);
    inputs[key.slice("ramroot:".length)] = value;
  }
  return inputs;
}

test("the default stack is a real Alpine box the component accepts: ssh, host keys on a data disk, a boot test", () => {
  const files = ownerFiles(base);
  const inputs = abSystemInputsSchema.parse(componentInputs(files, "nas"));
  expect(inputs.target).toEqual({ kind: "image", path: "machine.img" });
  expect(inputs.image.packages).toEqual(["alpine-base", "openssh", "syslinux"]);
  expect(inputs.image.repositories).toEqual([
    "https://dl-cdn.alpinelinux.org/alpine/v3.24/main",
    "https://dl-cdn.alpinelinux.org/alpine/v3.24/community",
  ]);
  expect(inputs.image.hostname).toBe("my-nas"); // the name as a host name
  expect(inputs.image.services.default).toEqual(["sshd"]);
  expect(inputs.image.sshHostKeys).toEqual({});
  expect(inputs.image.dataDisk).toMatchObject({ label: "data", mountpoint: "/data" });
  // the label `ramroot disk create` gives the FAT, so the machine mounts its boot partition
  expect(inputs.image.bootPartition).toMatchObject({ label: "RAMROOT", mountpoint: "/media/boot" });
  expect(inputs.bootTest !== false && inputs.bootTest?.marker).toBe(BOOT_MARKER);
  expect(inputs.strategy).toBeUndefined(); // switch, the default (a trial needs an ssh target)
});

test("every image prints the boot test's marker: the image-id service echoes it", () => {
  const script = fs.readFileSync(path.join(ROOT, "provider", "machine", "image-id.sh"), "utf8");
  expect(script).toContain(`echo "${BOOT_MARKER}$image"`);
});

test("an own repository and package list: paths as given, no ssh server, no host keys", () => {
  const files = ownerFiles({
    ...base,
    repositories: ["repo/x86_64-repo", "https://mirror.example/alpine/v3.24/main"],
    keys: ["/etc/apk/keys"],
    packages: ["alpine-baselayout", "busybox"],
  });
  const inputs = abSystemInputsSchema.parse(componentInputs(files, "nas"));
  expect(inputs.image.repositories).toEqual(["repo/x86_64-repo", "https://mirror.example/alpine/v3.24/main"]);
  expect(inputs.image.keys).toEqual(["/etc/apk/keys"]);
  expect(inputs.image.services.default).toBeUndefined();
  expect(inputs.image.sshHostKeys).toBeUndefined();
});

test("the TypeScript program and the YAML one both run the plugin from node_modules/ramroot", () => {
  const ts = ownerFiles(base);
  const yaml = ownerFiles({ ...base, program: "yaml" });
  for (const files of [ts, yaml]) {
    const project = YAML.parse(files["Pulumi.yaml"]!) as {
      name: string;
      stackConfigDir: string;
      backend: { url: string };
      plugins: { providers: { name: string; path: string }[] };
    };
    expect(project.name).toBe("My_NAS"); // the directory's name
    expect(project.stackConfigDir).toBe("stacks");
    expect(project.backend.url).toBe("file://./state");
    expect(project.plugins.providers).toEqual([{ name: "ramroot", path: "./node_modules/ramroot/provider/plugin" }]);
  }
  expect(ts["index.ts"]).toContain('from "ramroot"');
  expect(yaml["index.ts"]).toBeUndefined();
  const program = YAML.parse(yaml["Pulumi.yaml"]!) as { runtime: string; resources: Record<string, { type: string }> };
  expect(program.runtime).toBe("yaml");
  expect(program.resources.machine?.type).toBe("ramroot:index:AbSystem");
  const manifest = JSON.parse(ts["package.json"]!) as { dependencies: unknown; scripts: Record<string, string> };
  expect(manifest.dependencies).toEqual({ ramroot: "^0.1.0" });
  expect(manifest.scripts.start).toBe("bash node_modules/ramroot/scripts/owner.sh up nas");
  expect(ts[".gitignore"]!.split("\n")).toEqual(expect.arrayContaining(["node_modules/", ".ramroot/", "state/"]));
});
