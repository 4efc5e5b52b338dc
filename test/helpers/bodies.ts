// Realistic request bodies in Vapi's shapes, shared by the API tests.

export function assistantBody(overrides: Record<string, unknown> = {}) {
  return {
    name: "Front desk",
    firstMessage: "Hi, this is Riley from Acme. How can I help?",
    firstMessageMode: "assistant-speaks-first",
    model: {
      provider: "openai",
      model: "gpt-4o",
      messages: [{ role: "system", content: "You are Riley, a receptionist for {{company}}." }],
      temperature: 0.3,
      maxTokens: 300,
    },
    voice: {
      provider: "11labs",
      voiceId: "21m00Tcm4TlvDq8ikWAM",
      model: "eleven_turbo_v2_5",
      stability: 0.5,
      similarityBoost: 0.75,
    },
    transcriber: { provider: "deepgram", model: "nova-3", language: "en" },
    server: { url: "https://hooks.example.com/vapi", timeoutSeconds: 15, headers: { "x-team": "support" } },
    serverMessages: ["end-of-call-report", "status-update", "tool-calls"],
    endCallMessage: "Thanks for calling. Goodbye!",
    endCallPhrases: ["goodbye", "talk to you later"],
    silenceTimeoutSeconds: 30,
    maxDurationSeconds: 600,
    startSpeakingPlan: {
      waitSeconds: 0.4,
      transcriptionEndpointingPlan: {
        onPunctuationSeconds: 0.1,
        onNoPunctuationSeconds: 1.5,
        onNumberSeconds: 0.5,
      },
    },
    stopSpeakingPlan: { numWords: 0, voiceSeconds: 0.2, backoffSeconds: 1 },
    metadata: { team: "support", tier: 2 },
    ...overrides,
  };
}

export function functionToolBody(overrides: Record<string, unknown> = {}) {
  return {
    type: "function",
    function: {
      name: "lookup_order",
      description: "Look up an order by its number",
      parameters: {
        type: "object",
        properties: { orderNumber: { type: "string", description: "The order number" } },
        required: ["orderNumber"],
      },
    },
    server: { url: "https://tools.example.com/orders" },
    messages: [{ type: "request-start", content: "Let me check that order for you." }],
    ...overrides,
  };
}

let counter = 0;
/** A fresh E.164 number per call: numbers are unique across the platform. */
export function uniqueNumber(): string {
  counter += 1;
  return `+1415${String(Date.now() % 1_000_000)
    .padStart(6, "0")
    .slice(-3)}${String(counter).padStart(4, "0")}`;
}

export const TWILIO_SID = `AC${"0123456789abcdef".repeat(2)}`;

export function phoneNumberBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    provider: "twilio",
    number: uniqueNumber(),
    twilioAccountSid: TWILIO_SID,
    twilioAuthToken: "twilio-auth-token-very-secret",
    name: "Main line",
    ...overrides,
  };
}
