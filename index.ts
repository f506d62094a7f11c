/**
 * The ramroot Pulumi program: one machine, driven by the stack's config
 * (stacks/Pulumi.<stack>.yaml). components/machine-program.ts lists the keys; README.md
 * explains them.
 */
import * as path from "node:path";
import { machineProgram } from "./components/machine-program";

// The program runs compiled from dist/; paths in the stack config are relative to the project.
process.chdir(path.resolve(__dirname, ".."));

export = machineProgram;
