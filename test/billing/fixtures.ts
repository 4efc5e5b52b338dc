import type { CallUsage } from "../../libs/billing/index.ts";
import type { Db } from "../../libs/db/index.ts";

// A realistic two-minute inbound call, priced by hand in the tests (built-in table 2025-06-01):
//   transport twilio inbound: ceil(125.4 s) = 126 s × $0.0085/min / 60        = $0.017850
//   stt deepgram nova-3:      ceil(120.2 s) = 121 s × $0.0077/min / 60        = $0.015528333… → $0.015528
//   llm openai gpt-4o:        8,000 × $2.50 + 4,000 × $1.25 + 800 × $10.00 per 1M = $0.033000
//   tts 11labs flash v2.5:    1,500 chars × $0.05 / 1,000                      = $0.075000
//   platform:                 126 s × $0.05/min / 60                            = $0.105000
//   total                                                                       = $0.246378
export function callUsage(
  byo: Partial<Record<"transport" | "stt" | "llm" | "tts", boolean>> = {},
): CallUsage {
  return {
    durationSeconds: 125.4,
    transport: { provider: "twilio", direction: "inbound", seconds: 125.4, byo: byo.transport ?? false },
    stt: { provider: "deepgram", model: "nova-3", audioSeconds: 120.2, byo: byo.stt ?? false },
    llm: {
      provider: "openai",
      model: "gpt-4o",
      promptTokens: 12_000,
      cachedPromptTokens: 4_000,
      completionTokens: 800,
      byo: byo.llm ?? false,
    },
    tts: { provider: "11labs", model: "eleven_flash_v2_5", characters: 1_500, byo: byo.tts ?? false },
  };
}

export const CALL_TOTAL_MICROS = 246_378n;

export interface EndedCallInput {
  orgId: string;
  usage?: CallUsage | null;
  startedAt?: Date;
  assistantId?: string | null;
  phoneNumberId?: string | null;
  endedReason?: string;
  status?: string;
}

/** Writes an ended call the way the media plane does (record + usage), ready to be priced. */
export async function insertEndedCall(db: Db, input: EndedCallInput): Promise<string> {
  const startedAt = input.startedAt ?? new Date();
  const call = await db.call.create({
    data: {
      orgId: input.orgId,
      type: "inboundPhoneCall",
      status: input.status ?? "ended",
      endedReason: input.endedReason ?? "customer-ended-call",
      assistantId: input.assistantId ?? null,
      phoneNumberId: input.phoneNumberId ?? null,
      startedAt,
      endedAt: new Date(startedAt.getTime() + 125_400),
      ...(input.usage === null ? {} : { usage: input.usage ?? callUsage() }),
    },
  });
  return call.id;
}
