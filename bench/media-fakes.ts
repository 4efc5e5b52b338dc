// The provider fakes of `npm run bench:media` (Deepgram, OpenAI, and the voices: ElevenLabs, Cartesia,
// Deepgram Aura, OpenAI speech, each with the same first-byte delay and audio per character) in their own node
// process, so their fixed delays are kept by an event loop nobody else loads: a provider delay that
// drifts because the load generator is busy would be counted as the platform's overhead. Sends
// `{ready, deepgram, openai, elevenlabs, cartesia, deepgramTts, openaiTts}` (URLs) to the parent over IPC and answers "loop" with its
// event-loop delay since the last ask (bench/child-ipc.ts).
import {
  FakeCartesia,
  FakeDeepgram,
  FakeDeepgramTts,
  FakeElevenLabs,
  FakeOpenAI,
  FakeOpenAiTts,
} from "../test/fakes/index.ts";
import { answerParent } from "./child-ipc.ts";
import {
  ITL_MS,
  MS_PER_CHAR,
  REPLY,
  STT_DELAY_MS,
  TTFB_MS,
  TTFT_MS,
  UTTERANCE_ID_BASE,
  UTTERANCES,
} from "./media-script.ts";

const voice = { ttfbMs: TTFB_MS, msPerChar: MS_PER_CHAR };
const [deepgram, openai, elevenlabs, cartesia, deepgramTts, openaiTts] = await Promise.all([
  FakeDeepgram.start({ transcriberDelayMs: STT_DELAY_MS }),
  FakeOpenAI.start({ ttftMs: TTFT_MS, interTokenDelayMs: ITL_MS, respond: () => ({ text: REPLY }) }),
  FakeElevenLabs.start(voice),
  FakeCartesia.start(voice),
  // Deepgram's cap of 20 flushes a minute is per socket (per call): a call of the bench flushes fewer.
  FakeDeepgramTts.start(voice),
  FakeOpenAiTts.start(voice),
]);
UTTERANCES.forEach((text, i) => {
  deepgram.registerUtterance(UTTERANCE_ID_BASE + i, text);
});

answerParent();

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.allSettled([
    deepgram.close(),
    openai.close(),
    elevenlabs.close(),
    cartesia.close(),
    deepgramTts.close(),
    openaiTts.close(),
  ]);
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("disconnect", () => void stop());
process.send?.({
  ready: true,
  deepgram: deepgram.url,
  openai: openai.baseUrl,
  elevenlabs: elevenlabs.url,
  cartesia: cartesia.url,
  deepgramTts: deepgramTts.url,
  openaiTts: openaiTts.baseUrl,
});
