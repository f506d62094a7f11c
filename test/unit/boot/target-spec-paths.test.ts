import * as path from "node:path";
import { parseTargetSpec, resolveTargetSpec } from "../../../provider/boot/target-spec";

test("relative local files of an ssh target (known_hosts, ssh config) resolve against the project; the remote path stays", () => {
  const spec = parseTargetSpec({
    kind: "ssh",
    host: "127.0.0.1",
    port: 2222,
    path: "/media/boot",
    knownHostsFile: ".ramroot/nas-lab/known_hosts",
    sshConfigFile: ".ramroot/nas-lab/ssh_config",
  });
  expect(resolveTargetSpec(spec, "/project")).toEqual({
    ...spec,
    knownHostsFile: "/project/.ramroot/nas-lab/known_hosts",
    sshConfigFile: "/project/.ramroot/nas-lab/ssh_config",
  });
  const absolute = parseTargetSpec({
    kind: "ssh",
    host: "nas.lan",
    path: "/media/boot",
    knownHostsFile: "/etc/ssh/ssh_known_hosts",
  });
  expect(resolveTargetSpec(absolute, "/project")).toEqual(absolute);
  expect(resolveTargetSpec(parseTargetSpec({ kind: "image", path: "disk.img" }), "/project")).toEqual(
    expect.objectContaining({ path: path.join("/project", "disk.img") }),
  );
});
