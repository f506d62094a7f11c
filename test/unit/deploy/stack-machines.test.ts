import { machinesOf } from "../../../provider/deploy/stack-machines";

// The machines of a stack as its exported state records them: each AbSystem by name, with the
// target its SyslinuxConfig was given (an ssh key in it a secret, shown by `--show-secrets`).

const SECRET = "4dabf18193072939515e22adb298388d";
const stack = "urn:pulumi:prod::ramroot::";
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

test("each AbSystem by name, its target from its own SyslinuxConfig, secrets shown, relative paths resolved", () => {
  const ssh = { kind: "ssh", host: "router", user: "root", port: 22, path: "/media/boot", privateKey: KEY };
  const resources = [
    { urn: `${stack}pulumi:pulumi:Stack::ramroot-prod`, type: "pulumi:pulumi:Stack" },
    { urn: `${stack}ramroot:index:AbSystem::nas`, type: "ramroot:index:AbSystem" },
    {
      urn: `${stack}ramroot:index:AbSystem$ramroot:index:SyslinuxConfig::nas-syslinux`,
      type: "ramroot:index:SyslinuxConfig",
      parent: `${stack}ramroot:index:AbSystem::nas`,
      inputs: { target: { kind: "image", path: "disks/nas.img" } },
    },
    // a stack deployed before the component moved into the provider
    { urn: `${stack}ramroot:components:AbSystem::router`, type: "ramroot:components:AbSystem" },
    {
      urn: `${stack}ramroot:components:AbSystem$ramroot:index:SyslinuxConfig::router-syslinux`,
      type: "ramroot:index:SyslinuxConfig",
      parent: `${stack}ramroot:components:AbSystem::router`,
      inputs: { target: { [SECRET]: "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify(ssh) } },
    },
    // an AbSystem whose first update stopped before syslinux
    { urn: `${stack}ramroot:index:AbSystem::spare`, type: "ramroot:index:AbSystem" },
  ];
  const machines = machinesOf(resources, "/project");
  expect(machines.map((m) => m.name)).toEqual(["nas", "router", "spare"]);
  expect(machines[0]!.target).toEqual({ kind: "image", path: "/project/disks/nas.img" });
  expect(machines[1]!.target).toMatchObject({ kind: "ssh", host: "router", privateKey: KEY });
  expect(machines[2]!.target).toBeUndefined();
});
