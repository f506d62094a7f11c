/**
 * The Pulumi type tokens the ramroot provider serves. The program-side classes and the handlers
 * both name them from here, so a program never loads a handler (engine code) for a string.
 */
export const ALPINE_IMAGE_TOKEN = "ramroot:index:AlpineImage";
export const BOOT_SLOT_TOKEN = "ramroot:index:BootSlot";
export const BOOT_TEST_TOKEN = "ramroot:index:BootTest";
export const SYSLINUX_CONFIG_TOKEN = "ramroot:index:SyslinuxConfig";
/** the A/B component, constructed by the provider (Construct) */
export const AB_SYSTEM_TOKEN = "ramroot:index:AbSystem";
