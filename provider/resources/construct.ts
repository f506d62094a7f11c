/**
 * Construct: a component resource built on the provider's side of the gRPC boundary. The
 * engine hands over the program's inputs and its resource monitor's address; the component's
 * children are registered through the Pulumi Node SDK runtime inside this process, pointed at
 * that monitor, exactly as `@pulumi/pulumi/provider`'s own Construct does (provider/server.js:
 * reset the runtime's options, wait for the monitor's features, load the stack config, then
 * serialise the component's outputs and wait for every registration before answering).
 */
import * as pulumi from "../../components/pulumi-sdk";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import * as settings from "@pulumi/pulumi/runtime/settings";
import * as localState from "@pulumi/pulumi/runtime/state";
import { containsSecret, reveal } from "./secret-values";
import { InternalError, RamrootError } from "../ramroot-error";

// The three runtime steps the SDK's provider server takes are internal to the SDK (no typings).
declare module "@pulumi/pulumi/runtime/settings" {
  export function awaitFeatureSupport(): Promise<void>;
  export function waitForRPCs(): Promise<void>;
}
declare module "@pulumi/pulumi/runtime/state" {
  export function withLocalStorage<T>(callback: () => Promise<T>): Promise<T>;
}

export interface ConstructContext {
  /** parent, providers, aliases, protect, dependsOn as the program gave them */
  options: pulumi.ComponentResourceOptions;
  /** top-level inputs the program marked secret: the component keeps them secret in its children */
  secretInputs: ReadonlySet<string>;
  /** the stack's config, "namespace:key" -> value (JSON text for objects) */
  config: ReadonlyMap<string, string>;
  /** the project's and the stack's names (the stack's config file is Pulumi.<stack>.yaml) */
  project: string;
  stack: string;
  preview: boolean;
  /** a warning shown with the resource `urn` in the preview and update output */
  warn(message: string, urn: string): void;
}

/** What one component type implements; the provider server routes Construct calls by token. */
export interface ComponentHandler {
  readonly token: string;
  /** inputs are plain values (secrets unwrapped); returns the component and its outputs */
  construct(
    name: string,
    inputs: Record<string, unknown>,
    ctx: ConstructContext,
  ): Promise<{ urn: pulumi.Output<string>; state: Record<string, unknown> }>;
}

function aliasesOf(req: provproto.ConstructRequest): pulumi.Input<string | pulumi.Alias>[] {
  const aliases: pulumi.Input<string | pulumi.Alias>[] = [];
  for (const a of req.getAliasesList()) {
    if (a.hasUrn()) aliases.push(a.getUrn());
    else if (a.hasSpec()) {
      const spec = a.getSpec()!;
      aliases.push({
        ...(spec.getName() ? { name: spec.getName() } : {}),
        ...(spec.getType() ? { type: spec.getType() } : {}),
        ...(spec.getProject() ? { project: spec.getProject() } : {}),
        ...(spec.getStack() ? { stack: spec.getStack() } : {}),
        ...(spec.hasParenturn()
          ? { parent: spec.getParenturn() }
          : spec.getNoparent()
            ? { parent: pulumi.rootStackResource }
            : {}),
      });
    }
  }
  return aliases;
}

function optionsOf(req: provproto.ConstructRequest): pulumi.ComponentResourceOptions {
  const providers: Record<string, pulumi.ProviderResource> = {};
  for (const [pkg, ref] of req.getProvidersMap().entries()) providers[pkg] = new pulumi.DependencyProviderResource(ref);
  const protect = req.getProtect();
  return {
    aliases: aliasesOf(req),
    dependsOn: req.getDependenciesList().map((urn) => new pulumi.DependencyResource(urn)),
    providers,
    ...(protect !== undefined ? { protect } : {}),
    ...(req.getParent() ? { parent: new pulumi.DependencyResource(req.getParent()) } : {}),
  };
}

/** Serves one Construct request with `handler`; the caller answers the engine with the response. */
export async function construct(
  req: provproto.ConstructRequest,
  engineAddress: string | undefined,
  handler: ComponentHandler,
  warn: ConstructContext["warn"],
): Promise<provproto.ConstructResponse> {
  if (!engineAddress)
    throw new InternalError("Construct: the engine's address is unknown (the plugin was started without it)");
  return localState.withLocalStorage(async () => {
    settings.resetOptions(
      req.getProject(),
      req.getStack(),
      req.getParallel(),
      engineAddress,
      req.getMonitorendpoint(),
      req.getDryrun(),
      req.getOrganization(),
    );
    await settings.awaitFeatureSupport();
    const config = new Map(req.getConfigMap().entries());
    runtimeConfig.setAllConfig(Object.fromEntries(config), req.getConfigsecretkeysList());

    const raw = req.getInputs();
    const deserialized = raw ? rpc.deserializeProperties(raw, true) : {};
    const inputs: Record<string, unknown> = {};
    const secretInputs = new Set<string>();
    for (const [key, value] of Object.entries(deserialized)) {
      // A secret anywhere inside (the private key of a target) makes the input secret.
      if (containsSecret(value)) secretInputs.add(key);
      const plain: unknown = reveal(value);
      if (containsUnknownOutput(plain)) {
        throw new RamrootError(
          "input",
          `${handler.token} ${req.getName()}: input "${key}" is not known yet; the A/B decision needs every input during the preview (pass plain values or stack config, not another resource's outputs)`,
        );
      }
      inputs[key] = plain;
    }

    const { urn, state } = await handler.construct(req.getName(), inputs, {
      options: optionsOf(req),
      secretInputs,
      config,
      project: req.getProject(),
      stack: req.getStack(),
      preview: req.getDryrun(),
      warn,
    });
    const res = new provproto.ConstructResponse();
    res.setUrn(await valueOf(urn));
    const defined = Object.fromEntries(Object.entries(state).filter(([, v]) => v !== undefined));
    const [serialized, dependencies] = await rpc.serializeResourceProperties(
      `construct(${handler.token}, ${req.getName()})`,
      defined,
    );
    const depMap = res.getStatedependenciesMap();
    for (const [key, resources] of dependencies) {
      const deps = new provproto.ConstructResponse.PropertyDependencies();
      deps.setUrnsList(await Promise.all([...resources].map((r) => valueOf(r.urn))));
      depMap.set(key, deps);
    }
    res.setState(structproto.Struct.fromJavaScript(serialized));
    await settings.waitForRPCs();
    return res;
  });
}

function containsUnknownOutput(value: unknown): boolean {
  if (pulumi.isUnknown(value) || value === rpc.unknownValue || pulumi.Output.isInstance(value)) return true;
  if (Array.isArray(value)) return value.some(containsUnknownOutput);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsUnknownOutput);
  return false;
}

/** The value of an output that is always known (a URN). */
function valueOf(output: pulumi.Output<string>): Promise<string> {
  return new Promise((resolve) => output.apply((v) => resolve(v)));
}
