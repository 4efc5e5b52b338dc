// Operator CLI: creates an organisation and prints its first private API key (shown once).
//   npm run org:create -- "Acme Inc"

import { OrgService } from "../apps/api/src/services/org-service.ts";
import { parseEnv, requireVar } from "../libs/config/index.ts";
import { createDb } from "../libs/db/index.ts";
import { loadOrExit } from "../libs/runtime/process.ts";

const name = process.argv[2];
if (!name) {
  console.error('usage: npm run org:create -- "<organisation name>"');
  process.exit(1);
}
const url = loadOrExit(() => requireVar(parseEnv(process.env), "DATABASE_URL", "the platform database"));
const db = createDb(url);
const { org, apiKey } = await new OrgService(db).createOrg(name);
console.log(JSON.stringify({ org, apiKey }, null, 2));
await db.$disconnect();
