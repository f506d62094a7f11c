/**
 * What `import ... from "ramroot"` gives a Pulumi program in an owner's own repository (the
 * package's main): the stack program `ramroot init` uses, the A/B component and the resource
 * classes. Like the rest of components/, it loads no engine code: the provider plugin does the work.
 */
export { machineProgram } from "./machine-program";
export { AbSystem, type AbSystemArgs } from "./ab-system";
export {
  AlpineImage,
  BootSlot,
  BootTest,
  SyslinuxConfig,
  type AlpineImageArgs,
  type BootSlotArgs,
  type BootTestArgs,
  type SyslinuxConfigArgs,
} from "./resources";
