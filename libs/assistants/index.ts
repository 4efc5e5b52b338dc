// How an assistant runs a call, shared by the API, the media plane and the worker: the provider keys
// it uses, its prompt templates and variables, and which squad member runs the call.
export {
  type CredentialKeyRow,
  MissingProviderKeyError,
  type ProviderKey,
  pickProviderKeys,
  resolveProviderKeys,
} from "./credentials.ts";
export {
  assistantProviderNeeds,
  type MissingProviderKey,
  missingKeysMessage,
  missingProviderKeys,
  PLATFORM_KEY_VARS,
  type ProviderNeed,
  platformKeysOf,
} from "./provider-keys.ts";
export {
  type ChosenMember,
  firstSquadMember,
  memberDestinations,
  type SquadPlan,
  squadMemberByName,
  squadPlan,
  startingSquadMember,
} from "./squad-member.ts";
export { callVariables, renderTemplate, type Variables } from "./template.ts";
