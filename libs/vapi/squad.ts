import { type Static, Type } from "@sinclair/typebox";
import { AssistantOverrides, CreateAssistantDTO } from "./assistant.ts";
import { LIST_LIMITS, resourceFields, SharedRef, STRICT, TEXT_LIMITS, Uuid } from "./common.ts";
import { TransferDestinationAssistant } from "./tool.ts";

/** One assistant in a squad: a saved one (`assistantId`) or a transient one (`assistant`). */
export const SquadMemberDTO = Type.Object(
  {
    assistantId: Type.Optional(Uuid),
    assistant: Type.Optional(SharedRef(CreateAssistantDTO)),
    assistantOverrides: Type.Optional(SharedRef(AssistantOverrides)),
    // Who this member may hand the call to (by assistant `name`).
    assistantDestinations: Type.Optional(
      Type.Array(TransferDestinationAssistant, { maxItems: LIST_LIMITS.items }),
    ),
  },
  { ...STRICT, title: "SquadMemberDTO" },
);
export type SquadMemberDTO = Static<typeof SquadMemberDTO>;

const squadProperties = {
  // Vapi sets no limit on squad names; 40 as for assistants.
  name: Type.Optional(Type.String({ maxLength: TEXT_LIMITS.name })),
  // The first member starts the call.
  members: Type.Array(SquadMemberDTO, { minItems: 1, maxItems: LIST_LIMITS.items }),
  membersOverrides: Type.Optional(SharedRef(AssistantOverrides)),
};

export const CreateSquadDTO = Type.Object(squadProperties, {
  ...STRICT,
  $id: "CreateSquadDTO",
  title: "CreateSquadDTO",
});
export type CreateSquadDTO = Static<typeof CreateSquadDTO>;

export const UpdateSquadDTO = Type.Partial(CreateSquadDTO, { title: "UpdateSquadDTO" });
export type UpdateSquadDTO = Static<typeof UpdateSquadDTO>;

export const Squad = Type.Object({ ...resourceFields, ...squadProperties }, { title: "Squad" });
export type Squad = Static<typeof Squad>;
