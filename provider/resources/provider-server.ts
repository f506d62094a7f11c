/**
 * The ramroot resource provider as a Pulumi plugin: a gRPC server speaking the resource
 * provider protocol, launched by the engine through `plugins.providers` in Pulumi.yaml.
 *
 * Written against the protocol directly (the generated stubs that ship in @pulumi/pulumi)
 * rather than through `@pulumi/pulumi/provider`: that wrapper drops `detailedDiff`, the old
 * inputs and the preview flag, and previews that name packages and files need all three.
 */
import * as grpc from "@grpc/grpc-js";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as pluginproto from "@pulumi/pulumi/proto/plugin_pb";
import * as enginerpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engineproto from "@pulumi/pulumi/proto/engine_pb";
import type { AnyResourceHandler, OperationContext, PropertyChange } from "./resource-handler";
import { construct, type ComponentHandler } from "./construct";
import { annotateSecrets, reveal, secretFields } from "./secret-values";
import { InternalError } from "../ramroot-error";

/** The sentinel the engine uses for values not known until another resource is created. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function containsUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

const KIND: Record<PropertyChange, provproto.PropertyDiff.Kind> = {
  add: provproto.PropertyDiff.Kind.ADD,
  delete: provproto.PropertyDiff.Kind.DELETE,
  update: provproto.PropertyDiff.Kind.UPDATE,
};
const REPLACE_KIND: Record<PropertyChange, provproto.PropertyDiff.Kind> = {
  add: provproto.PropertyDiff.Kind.ADD_REPLACE,
  delete: provproto.PropertyDiff.Kind.DELETE_REPLACE,
  update: provproto.PropertyDiff.Kind.UPDATE_REPLACE,
};

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

/** The properties as sent, secrets still wrapped. */
function toWrapped(struct: structproto.Struct | undefined): Record<string, unknown> {
  return (struct?.toJavaScript() ?? {}) as Record<string, unknown>;
}

/** The properties as the handlers see them: plain values, secrets unwrapped. */
function toJs(struct: structproto.Struct | undefined): Record<string, unknown> {
  return reveal(toWrapped(struct)) as Record<string, unknown>;
}

function toStruct(value: unknown): structproto.Struct {
  // Struct.fromJavaScript rejects undefined; JSON drops it the way the engine expects.
  return structproto.Struct.fromJavaScript(JSON.parse(JSON.stringify(value ?? {})));
}

function typeOf(urn: string): string {
  // urn:pulumi:<stack>::<project>::<qualified type>::<name>; the last `$` part is the type.
  const qualified = urn.split("::")[2] ?? "";
  return qualified.split("$").pop() ?? qualified;
}

function errorFor(err: unknown): grpc.ServiceError {
  const message = err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(message), {
    code: grpc.status.UNKNOWN,
    details: message,
    metadata: new grpc.Metadata(),
  });
}

export interface ProviderOptions {
  name: string;
  version: string;
  handlers: AnyResourceHandler[];
  /** component resources built on the provider's side (Construct) */
  components?: ComponentHandler[];
  schema: string;
  /** property names the schema flags secret: always returned as secrets */
  secretFields?: ReadonlySet<string>;
}

export class ProviderServer {
  private readonly handlers = new Map<string, AnyResourceHandler>();
  private readonly components = new Map<string, ComponentHandler>();
  private engine?: enginerpc.EngineClient;
  private engineAddress?: string;

  constructor(private readonly opts: ProviderOptions) {
    for (const h of opts.handlers) this.handlers.set(h.token, h);
    for (const c of opts.components ?? []) this.components.set(c.token, c);
  }

  /** Connects progress logging to the engine that launched the plugin. */
  connectEngine(address: string | undefined): void {
    if (!address) return;
    this.engineAddress = address;
    this.engine = new enginerpc.EngineClient(address, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": 400 * 1024 * 1024,
    });
  }

  private context(urn: string, preview: boolean): OperationContext {
    return {
      urn,
      preview,
      log: (message, severity = "info") => {
        const sev = {
          info: engineproto.LogSeverity.INFO,
          note: engineproto.LogSeverity.INFO,
          warning: engineproto.LogSeverity.WARNING,
          debug: engineproto.LogSeverity.DEBUG,
        }[severity];
        if (!this.engine) {
          process.stderr.write(`${message}\n`);
          return;
        }
        const req = new engineproto.LogRequest();
        req.setSeverity(sev);
        req.setMessage(message);
        req.setUrn(urn);
        req.setEphemeral(severity === "info");
        this.engine.log(req, () => undefined);
      },
    };
  }

  /** What a handler returns, secret where the inputs were and where the schema says so. */
  private guarded(plain: unknown, wrappedInputs: unknown): structproto.Struct {
    return toStruct(secretFields(annotateSecrets(plain, wrappedInputs), this.opts.secretFields ?? new Set()));
  }

  private handler(urn: string): AnyResourceHandler {
    const token = typeOf(urn);
    const h = this.handlers.get(token);
    if (!h)
      throw new InternalError(
        `unknown resource type ${token}; ${this.opts.name} provides ${[...this.handlers.keys()].join(", ")}`,
      );
    return h;
  }

  private unary<Req, Res>(fn: (req: Req) => Promise<Res> | Res): Unary<Req, Res> {
    return (call, callback) => {
      Promise.resolve()
        .then(() => fn(call.request))
        .then((res) => callback(null, res))
        .catch((err: unknown) => callback(errorFor(err), null));
    };
  }

  service(): provrpc.IResourceProviderServer {
    const unimplemented =
      (name: string): Unary<unknown, never> =>
      (_call, callback) =>
        callback(Object.assign(new Error(`${name} is not implemented`), { code: grpc.status.UNIMPLEMENTED }), null);
    return {
      handshake: this.unary((req: provproto.ProviderHandshakeRequest) => {
        void req;
        const res = new provproto.ProviderHandshakeResponse();
        res.setAcceptSecrets(true);
        res.setAcceptResources(false);
        res.setAcceptOutputs(false);
        return res;
      }),
      parameterize: unimplemented("Parameterize"),
      getSchema: this.unary(() => {
        const res = new provproto.GetSchemaResponse();
        res.setSchema(this.opts.schema);
        return res;
      }),
      checkConfig: this.unary((req: provproto.CheckRequest) => {
        const res = new provproto.CheckResponse();
        res.setInputs(req.getNews());
        return res;
      }),
      diffConfig: this.unary(() => {
        const res = new provproto.DiffResponse();
        res.setChanges(provproto.DiffResponse.DiffChanges.DIFF_NONE);
        return res;
      }),
      configure: this.unary(() => {
        const res = new provproto.ConfigureResponse();
        // The engine requires it of a provider that constructs components (AbSystem). Secrets
        // arrive wrapped; every answer keeps them secret (secret-values.ts).
        res.setAcceptsecrets(true);
        res.setAcceptresources(false);
        // Previews call create/update with preview=true, so the plan shows real values.
        res.setSupportspreview(true);
        return res;
      }),
      invoke: unimplemented("Invoke"),
      call: unimplemented("Call"),
      construct: this.unary((req: provproto.ConstructRequest) => {
        const component = this.components.get(req.getType());
        if (!component)
          throw new InternalError(
            `unknown component type ${req.getType()}; ${this.opts.name} constructs ${[...this.components.keys()].join(", ") || "none"}`,
          );
        return construct(req, this.engineAddress, component, (message, urn) =>
          this.context(urn, req.getDryrun()).log(message, "warning"),
        );
      }),
      list: (call) => {
        call.emit("error", { code: grpc.status.UNIMPLEMENTED, details: "List is not implemented" });
      },
      getMapping: this.unary(() => new provproto.GetMappingResponse()),
      getMappings: this.unary(() => new provproto.GetMappingsResponse()),
      attach: this.unary((req: pluginproto.PluginAttach) => {
        this.connectEngine(req.getAddress());
        return new emptyproto.Empty();
      }),
      cancel: this.unary(() => new emptyproto.Empty()),
      getPluginInfo: this.unary(() => {
        const info = new pluginproto.PluginInfo();
        info.setVersion(this.opts.version);
        return info;
      }),
      check: this.unary(async (req: provproto.CheckRequest) => {
        const res = new provproto.CheckResponse();
        const news = toJs(req.getNews());
        // Values another resource has yet to produce are checked when they are known.
        if (containsUnknown(news)) {
          res.setInputs(this.guarded(news, toWrapped(req.getNews())));
          return res;
        }
        const outcome = await this.handler(req.getUrn()).check(news);
        if (outcome.ok) {
          res.setInputs(this.guarded(outcome.inputs, toWrapped(req.getNews())));
        } else {
          res.setInputs(req.getNews());
          res.setFailuresList(
            outcome.failures.map((f) => {
              // The reason names the property and its value already; with a property set, the
              // engine would add its own dump of the whole top-level value.
              const failure = new provproto.CheckFailure();
              failure.setProperty("");
              failure.setReason(f.reason);
              return failure;
            }),
          );
        }
        return res;
      }),
      diff: this.unary(async (req: provproto.DiffRequest) => {
        const res = new provproto.DiffResponse();
        const urn = req.getUrn();
        const olds = toJs(req.getOlds());
        const news = toJs(req.getNews());
        const ctx = this.context(urn, true);
        const outcome = containsUnknown(news)
          ? { changes: unknownChanges(olds, news), replaces: [] as string[] }
          : await this.handler(urn).diff(req.getId(), olds, news, ctx);
        const replaces = new Set(outcome.replaces ?? []);
        const paths = Object.keys(outcome.changes).sort();
        res.setChanges(
          paths.length > 0
            ? provproto.DiffResponse.DiffChanges.DIFF_SOME
            : provproto.DiffResponse.DiffChanges.DIFF_NONE,
        );
        res.setDiffsList([...new Set(paths.map(topLevel))]);
        res.setReplacesList([...replaces]);
        res.setDeletebeforereplace(outcome.deleteBeforeReplace ?? false);
        res.setHasdetaileddiff(true);
        const detailed = res.getDetaileddiffMap();
        for (const path of paths) {
          const kind = outcome.changes[path]!;
          const pd = new provproto.PropertyDiff();
          pd.setKind(replaces.has(topLevel(path)) ? REPLACE_KIND[kind] : KIND[kind]);
          pd.setInputdiff(true);
          detailed.set(path, pd);
        }
        return res;
      }),
      create: this.unary(async (req: provproto.CreateRequest) => {
        const urn = req.getUrn();
        const inputs = toJs(req.getProperties());
        const res = new provproto.CreateResponse();
        if (req.getPreview() && containsUnknown(inputs)) {
          res.setProperties(req.getProperties() ?? toStruct({}));
          return res;
        }
        const { id, outs } = await this.handler(urn).create(inputs, this.context(urn, req.getPreview()));
        res.setId(req.getPreview() ? "" : id);
        res.setProperties(this.guarded(outs, toWrapped(req.getProperties())));
        return res;
      }),
      read: this.unary(async (req: provproto.ReadRequest) => {
        const urn = req.getUrn();
        const res = new provproto.ReadResponse();
        const found = await this.handler(urn).read(req.getId(), toJs(req.getProperties()), this.context(urn, false));
        if (!found) return res; // an empty id tells the engine the resource is gone
        res.setId(req.getId());
        res.setProperties(this.guarded(found.outs, toWrapped(req.getProperties())));
        res.setInputs(this.guarded(found.inputs, toWrapped(req.getInputs() ?? req.getProperties())));
        return res;
      }),
      update: this.unary(async (req: provproto.UpdateRequest) => {
        const urn = req.getUrn();
        const olds = toJs(req.getOlds());
        const news = toJs(req.getNews());
        const res = new provproto.UpdateResponse();
        const wrapped = { ...toWrapped(req.getOlds()), ...toWrapped(req.getNews()) };
        if (req.getPreview() && containsUnknown(news)) {
          res.setProperties(this.guarded({ ...olds, ...news }, wrapped));
          return res;
        }
        const outs = await this.handler(urn).update(req.getId(), olds, news, this.context(urn, req.getPreview()));
        res.setProperties(this.guarded(outs, wrapped));
        return res;
      }),
      delete: this.unary(async (req: provproto.DeleteRequest) => {
        const urn = req.getUrn();
        await this.handler(urn).delete(req.getId(), toJs(req.getProperties()), this.context(urn, false));
        return new emptyproto.Empty();
      }),
    };
  }

  /** Listens on a free loopback port and prints it, as the engine's plugin protocol asks. */
  async serve(engineAddress: string | undefined): Promise<void> {
    this.connectEngine(engineAddress);
    const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
    server.addService(provrpc.ResourceProviderService, this.service());
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    process.stdout.write(`${port}\n`);
  }
}

function topLevel(path: string): string {
  return path.split(/[.[]/)[0] ?? path;
}

/** While inputs hold unknowns, every property that is unknown or differs is a change. */
function unknownChanges(olds: Record<string, unknown>, news: Record<string, unknown>): Record<string, PropertyChange> {
  const changes: Record<string, PropertyChange> = {};
  for (const key of Object.keys(news)) {
    if (containsUnknown(news[key]) || JSON.stringify(news[key]) !== JSON.stringify(olds[key])) {
      changes[key] = key in olds ? "update" : "add";
    }
  }
  return changes;
}
