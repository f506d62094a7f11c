import { absoluteImageConfig } from "../../../provider/image/absolute-paths";

// One rule for the program and the provider: local paths become absolute against the project,
// URLs and PEM text stay as they are, and what is not a value yet (an Output) is left whole.

test("local paths absolute; URLs, absolute paths and PEM text kept", () => {
  const pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  const out = absoluteImageConfig(
    {
      packages: ["busybox"],
      repositories: ["repo", "https://dl-cdn.alpinelinux.org/alpine/v3.24/main", "/srv/repo"],
      keys: ["keys/a.rsa.pub"],
      overlay: "root",
      secureBoot: { privateKey: pem, certificate: "sb/db.crt" },
    },
    "/project",
  );
  expect(out).toEqual({
    packages: ["busybox"],
    repositories: ["/project/repo", "https://dl-cdn.alpinelinux.org/alpine/v3.24/main", "/srv/repo"],
    keys: ["/project/keys/a.rsa.pub"],
    overlay: "/project/root",
    secureBoot: { privateKey: pem, certificate: "/project/sb/db.crt" },
  });
});

test("a value that is not text yet is left as it is", () => {
  const output = { __pulumiOutput: true };
  const out = absoluteImageConfig({ overlay: output, secureBoot: output, keys: [output] }, "/project");
  expect(out.overlay).toBe(output);
  expect(out.secureBoot).toBe(output);
  expect(out.keys).toEqual([output]);
});
