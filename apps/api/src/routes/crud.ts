import type { TSchema } from "@sinclair/typebox";
import type { ErrorObject } from "ajv";
import type { FastifyInstance, FastifySchema } from "fastify";
import { ValidationError } from "../../../../libs/errors/index.ts";
import { formatAjvErrors, requestAjv } from "../../../../libs/http/index.ts";
import { ListQuery, SHARED_SCHEMAS } from "../../../../libs/vapi/index.ts";
import type { ServiceContext } from "../services/common.ts";
import { errors, IdParam } from "./shared.ts";

type Body = Record<string, unknown>;

/** The five operations every resource has, in terms of its service. */
export interface CrudService<V> {
  create(ctx: ServiceContext, body: Body): Promise<V>;
  get(ctx: ServiceContext, id: string): Promise<V>;
  list(ctx: ServiceContext, q: Record<string, unknown>): Promise<V[]>;
  update(ctx: ServiceContext, id: string, patch: Body): Promise<V>;
  remove(ctx: ServiceContext, id: string): Promise<V>;
}

export interface CrudOptions<V> {
  path: string;
  /** Vapi's controller name, used for operationIds (`AssistantController_create`). */
  controller: string;
  tag: string;
  noun: string;
  create: TSchema;
  update: TSchema;
  response: TSchema;
  listQuery?: TSchema;
  service: CrudService<V>;
  /** A body discriminated by a field (tools by `type`, credentials by `provider`) is validated by its own branch. */
  dispatch?: {
    field: string;
    create: Record<string, TSchema>;
    update: Record<string, TSchema>;
    /** The stored discriminator of an existing resource, to validate a PATCH against its branch. */
    current(ctx: ServiceContext, id: string): Promise<string>;
  };
}

// The body rules of every route (libs/http/validation.ts); a branch's shared parts (tool messages) by $ref.
const ajv = requestAjv(false, SHARED_SCHEMAS);

function compileMap(map: Record<string, TSchema>) {
  return Object.fromEntries(Object.entries(map).map(([k, s]) => [k, ajv.compile(s)]));
}

function validateBranch(
  validators: Record<string, ReturnType<typeof ajv.compile>>,
  field: string,
  key: unknown,
  body: unknown,
): void {
  const v = typeof key === "string" ? validators[key] : undefined;
  if (!v) {
    throw new ValidationError(`body.${field} must be one of: ${Object.keys(validators).join(", ")}`);
  }
  if (!v(body)) throw new ValidationError(formatAjvErrors((v.errors ?? []) as ErrorObject[], "body"));
}

export function crudRoutes<V>(app: FastifyInstance, o: CrudOptions<V>): void {
  const { service } = o;
  const byId = `${o.path}/:id`;
  const dispatch = o.dispatch;
  const createValidators = dispatch ? compileMap(dispatch.create) : undefined;
  const updateValidators = dispatch ? compileMap(dispatch.update) : undefined;
  // A discriminated body is published as the union (for OpenAPI) but validated per branch, so
  // the error names the field that is wrong in *that* branch instead of "matches no shape".
  const objectOnly = () => (data: unknown) =>
    data !== null && typeof data === "object" && !Array.isArray(data)
      ? { value: data }
      : { error: new Error("body must be a JSON object") };

  const schema = (s: FastifySchema): FastifySchema => ({ tags: [o.tag], ...s });

  app.post<{ Body: Body }>(
    o.path,
    {
      schema: schema({
        operationId: `${o.controller}_create`,
        summary: `Create ${o.noun}`,
        body: o.create,
        response: { 201: o.response, ...errors(400, 401, 403, 409, 413) },
      }),
      ...(dispatch ? { validatorCompiler: objectOnly } : {}),
    },
    async (req, reply) => {
      if (dispatch && createValidators) {
        validateBranch(createValidators, dispatch.field, req.body[dispatch.field], req.body);
      }
      return reply.status(201).send(await service.create(req.auth, req.body));
    },
  );

  app.get<{ Querystring: Record<string, unknown> }>(
    o.path,
    {
      schema: schema({
        operationId: `${o.controller}_findAll`,
        summary: `List ${o.noun}s, newest first`,
        querystring: o.listQuery ?? ListQuery,
        response: { 200: { type: "array", items: o.response }, ...errors(400, 401, 403) },
      }),
    },
    async (req) => service.list(req.auth, req.query),
  );

  app.get<{ Params: IdParam }>(
    byId,
    {
      schema: schema({
        operationId: `${o.controller}_findOne`,
        summary: `Get ${o.noun}`,
        params: IdParam,
        response: { 200: o.response, ...errors(401, 403, 404) },
      }),
    },
    async (req) => service.get(req.auth, req.params.id),
  );

  app.patch<{ Params: IdParam; Body: Body }>(
    byId,
    {
      schema: schema({
        operationId: `${o.controller}_update`,
        summary: `Update ${o.noun} (only the fields given change)`,
        params: IdParam,
        body: o.update,
        response: { 200: o.response, ...errors(400, 401, 403, 404, 409, 413) },
      }),
      ...(dispatch ? { validatorCompiler: objectOnly } : {}),
    },
    async (req) => {
      if (dispatch && updateValidators) {
        const kind = await dispatch.current(req.auth, req.params.id);
        validateBranch(updateValidators, dispatch.field, kind, req.body);
      }
      return service.update(req.auth, req.params.id, req.body);
    },
  );

  app.delete<{ Params: IdParam }>(
    byId,
    {
      schema: schema({
        operationId: `${o.controller}_remove`,
        summary: `Delete ${o.noun}`,
        params: IdParam,
        response: { 200: o.response, ...errors(401, 403, 404) },
      }),
    },
    async (req) => service.remove(req.auth, req.params.id),
  );
}
