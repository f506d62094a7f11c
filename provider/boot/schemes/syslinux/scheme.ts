/** syslinux on a BIOS FAT partition: DEFAULT in syslinux.cfg, the once-boot in ldlinux.sys's ADV. */
import type { BootScheme } from "../boot-scheme";
import {
  bootPartitionProblem,
  findLdlinuxDir,
  findSyslinuxConfigPath,
  readSyslinuxConfig,
  renderSyslinuxConfig,
  writeSyslinuxConfig,
} from "./config";
import { clearBootOnce, clearStaleBootOnce, readBootOnce, setBootOnce } from "./once";

export const syslinuxScheme: BootScheme = {
  name: "syslinux",
  installedOn: async (target) => (await findLdlinuxDir(target)) !== undefined,
  partitionProblem: bootPartitionProblem,
  configPath: findSyslinuxConfigPath,
  readConfig: readSyslinuxConfig,
  renderConfig: renderSyslinuxConfig,
  writeConfig: writeSyslinuxConfig,
  readBootOnce,
  setBootOnce,
  clearBootOnce,
  clearStaleBootOnce,
};
