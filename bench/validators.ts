// npx tsx bench/validators.ts — what the heavy request bodies cost to compile: each validator in
// a fresh Ajv with the API's body options (time, and size of the generated code with everything
// it references), then all three in one Ajv in the order a new API process meets them.
// A quick measurement, not a timed test: figures depend on the machine's load.

import { loadavg } from "node:os";
import type { AnySchema } from "ajv";
import standaloneModule from "ajv/dist/standalone/index.js";
import { requestAjv } from "../libs/http/index.ts";
import { CreateAssistantDTO, CreateCallDTO, CreateSquadDTO, SHARED_SCHEMAS } from "../libs/vapi/index.ts";

const bodies: [string, AnySchema][] = [
  ["CreateAssistantDTO", CreateAssistantDTO],
  ["CreateSquadDTO", CreateSquadDTO],
  ["CreateCallDTO", CreateCallDTO],
];

// CommonJS with `exports.default`: under NodeNext the default import is `module.exports`.
const standaloneCode = standaloneModule.default;

function sizeOf(schema: AnySchema): number {
  const ajv = requestAjv(false, SHARED_SCHEMAS, { code: { source: true } });
  return standaloneCode(ajv, ajv.compile(schema)).length;
}

function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const out = f();
  return [out, performance.now() - t0];
}

console.log(`node ${process.version}, load average ${loadavg()[0]?.toFixed(1)}`);
console.log("| body | compile ms (fresh Ajv) | generated code KB | compile ms (one Ajv, in order) |");
console.log("| --- | ---: | ---: | ---: |");
const one = requestAjv(false, SHARED_SCHEMAS);
for (const [name, schema] of bodies) {
  const [, fresh] = timed(() => requestAjv(false, SHARED_SCHEMAS).compile(schema));
  const [, shared] = timed(() => one.compile(schema));
  console.log(
    `| ${name} | ${fresh.toFixed(0)} | ${(sizeOf(schema) / 1024).toFixed(0)} | ${shared.toFixed(0)} |`,
  );
}
