/** systemd-boot on an EFI system partition: the default in loader/loader.conf, the once-boot in LoaderEntryOneShot. */
import type { BootScheme } from "../boot-scheme";
import {
  ENTRIES_DIR,
  LOADER_DIR,
  readLoaderConfig,
  renderLoaderConfig,
  writeLoaderConfig,
  LOADER_CONF,
} from "./loader-config";
import { clearOneShot, clearStaleOneShot, readOneShot, setOneShot } from "./once";

/** systemd-boot where UEFI firmware finds it: the removable-media path, or its own directory. */
const SYSTEMD_BOOT_DIRS = ["EFI/systemd", "EFI/BOOT"];

async function installedOn(target: Parameters<BootScheme["installedOn"]>[0]): Promise<boolean> {
  const loader = await target.list(LOADER_DIR);
  return loader.some((n) => n.toLowerCase() === "loader.conf" || n.toLowerCase() === "entries");
}

export const uefiScheme: BootScheme = {
  name: "uefi",
  installedOn,
  partitionProblem: async (target) =>
    (await installedOn(target))
      ? undefined
      : `nor systemd-boot's ${LOADER_CONF} or ${ENTRIES_DIR}/ (an EFI system partition: \`ramroot disk create --scheme uefi\`, or systemd-boot in ${SYSTEMD_BOOT_DIRS.join(" or ")} with a ${LOADER_DIR}/ directory)`,
  configPath: async () => LOADER_CONF,
  readConfig: readLoaderConfig,
  renderConfig: renderLoaderConfig,
  writeConfig: writeLoaderConfig,
  readBootOnce: readOneShot,
  setBootOnce: setOneShot,
  clearBootOnce: clearOneShot,
  clearStaleBootOnce: clearStaleOneShot,
};
