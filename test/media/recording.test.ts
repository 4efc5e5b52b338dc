import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { signedRecordingUrl } from "../../libs/recordings/index.ts";
import type { TwilioCallSimulator } from "../fakes/index.ts";
import { type FaultPlatform, startFaultPlatform } from "../faults/platform.ts";
import type { TestOrg } from "../helpers/api.ts";
import { type AppProcess, type RedisServer, startApp, startRedisServer } from "../helpers/fault-processes.ts";
import { LOCAL_S3_CREDENTIALS, type LocalS3, startLocalS3 } from "../helpers/s3.ts";
import {
  callAssistant,
  createAssistant,
  finalizedCall,
  type MediaEnv,
  startMediaEnv,
  waitForSpoken,
  waitUntil,
} from "./harness.ts";
import { WebCallClient } from "./web-call-client.ts";

// Call recordings end to end (artifactPlan.recordingEnabled): a phone call and a web call recorded
// by the media process as the caller heard them, downloaded through Vapi's routes (302 to a signed
// URL) and parsed as WAV: the caller's audio on the customer channel, the fake voice's tone on the
// assistant's, silence after a barge-in's cut. Range requests, signed URLs, erasure with the call,
// an organisation's own bucket on a local S3-compatible server, and a recording that cannot be
// stored (the call still ends normally and says why). Only the stereo WAV is stored; the mono,
// customer and assistant tracks are derived from it as they are downloaded.

const BLOCK_MS = 20;
/** The fake voice (FakeElevenLabs, msPerChar 10): 10 ms of tone per character. */
const MS_PER_CHAR = 10;
const VOICED = 500;

interface Wav {
  channels: number;
  sampleRate: number;
  /** Samples per channel. */
  samples: Int16Array[];
}

function parseWav(buf: Buffer): Wav {
  assert.equal(buf.toString("ascii", 0, 4), "RIFF");
  assert.equal(buf.toString("ascii", 8, 12), "WAVE");
  assert.equal(buf.readUInt32LE(4), buf.length - 8, "RIFF size");
  assert.equal(buf.readUInt16LE(20), 1, "PCM");
  const channels = buf.readUInt16LE(22);
  const sampleRate = buf.readUInt32LE(24);
  assert.equal(buf.readUInt16LE(34), 16, "16-bit");
  assert.equal(buf.toString("ascii", 36, 40), "data");
  const dataBytes = buf.readUInt32LE(40);
  assert.equal(dataBytes, buf.length - 44, "data size");
  const n = dataBytes / 2 / channels;
  const samples = Array.from({ length: channels }, () => new Int16Array(n));
  for (let i = 0; i < n; i++)
    for (let c = 0; c < channels; c++)
      (samples[c] as Int16Array)[i] = buf.readInt16LE(44 + (i * channels + c) * 2);
  return { channels, sampleRate, samples };
}

/** Per 20 ms block: whether the channel is voiced. */
function voicedBlocks(samples: Int16Array, sampleRate: number): boolean[] {
  const per = (sampleRate / 1000) * BLOCK_MS;
  const out: boolean[] = [];
  for (let b = 0; b + per <= samples.length; b += per) {
    let sum = 0;
    for (let i = 0; i < per; i++) sum += Math.abs(samples[b + i] as number);
    out.push(sum / per > VOICED);
  }
  return out;
}

/** Voiced stretches as [first, last] block; gaps up to 200 ms do not split one. */
function stretches(blocks: boolean[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  blocks.forEach((v, i) => {
    if (!v) return;
    const last = out[out.length - 1];
    if (last && i - last[1] <= 11) last[1] = i;
    else out.push([i, i]);
  });
  return out;
}

const voicedMs = (blocks: boolean[]) => blocks.filter(Boolean).length * BLOCK_MS;

function callIdOf(sim: TwilioCallSimulator): string {
  const id = sim.customParameters.callId;
  assert.ok(id);
  return id;
}

interface Artifact {
  recordingUrl?: string;
  stereoRecordingUrl?: string;
  recording?: {
    stereoUrl?: string;
    mono?: { combinedUrl?: string; customerUrl?: string; assistantUrl?: string };
  };
  presignedMonoUrl?: string;
  presignedStereoUrl?: string;
  presignedCustomerUrl?: string;
  presignedAssistantUrl?: string;
  presignedUrlsExpiresAt?: string;
  recordingError?: string;
  recordingStorage?: unknown;
  transcript?: string;
}

async function artifactOf(env: MediaEnv, callId: string, key = env.org.key): Promise<Artifact> {
  const res = await env.t.request({ method: "GET", url: `/call/${callId}`, key });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json().artifact ?? {}) as Artifact;
}

/** GET with an API key as a Vapi client does: the route answers 302, the client follows it. */
async function download(url: string, key: string, headers: Record<string, string> = {}) {
  const first = await fetch(url, {
    headers: { authorization: `Bearer ${key}`, ...headers },
    redirect: "manual",
  });
  assert.equal(first.status, 302, await first.clone().text());
  const location = first.headers.get("location");
  assert.ok(location);
  assert.match(location, /\/recording\/\w+\.wav\?expires=\d+&signature=/);
  // Followed without the key: the signed URL is the credential.
  const res = await fetch(location, { headers });
  return { res, body: Buffer.from(await res.arrayBuffer()), location };
}

describe("call recordings", { concurrency: true }, () => {
  let env: MediaEnv;
  let dir: string;
  let s3: LocalS3;
  let s3Url: string;
  // Made before any call runs: creating an organisation is a transaction the busy pool may not start in time.
  let other: TestOrg;
  let bucketOwner: TestOrg;
  let noBucket: TestOrg;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "recordings-"));
    s3 = await startLocalS3(dir, ["acme-recordings"]);
    s3Url = s3.endpoint;
    env = await startMediaEnv({
      env: {
        RECORDINGS_DIR: path.join(dir, "local"),
        RECORDINGS_CUSTOM_S3_ENDPOINT: s3Url,
        RECORDINGS_CUSTOM_S3_FORCE_PATH_STYLE: "true",
      },
    });
    env.openai.respond = (req) => {
      const last = [...req.messages].reverse().find((m) => m.role === "user");
      return { text: `You said: ${typeof last?.content === "string" ? last.content : "nothing"}.` };
    };
    other = await env.t.createOrg("Other");
    bucketOwner = await env.t.createOrg("Bucket owner");
    noBucket = await env.t.createOrg("No bucket");
    for (const o of [bucketOwner, noBucket]) {
      await env.t.db.org.update({ where: { id: o.orgId }, data: { concurrencyLimit: 10 } });
    }
  });
  after(async () => {
    await env.close();
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("a phone call: the mono, stereo, customer and assistant WAVs as the caller heard it (8 kHz), through Vapi's routes", async () => {
    const { sim } = await callAssistant(env, { firstMessage: "Hello there." });
    const callId = callIdOf(sim);
    await waitForSpoken(sim, 1);
    await new Promise((r) => setTimeout(r, 300));
    await sim.say("I would like to check my order status", 1000);
    await waitForSpoken(sim, 2);
    await new Promise((r) => setTimeout(r, 300));
    await sim.hangup();
    const row = await finalizedCall(env, sim.callSid);
    assert.equal(row.endedReason, "customer-ended-call");
    const callMs = (row.endedAt?.getTime() ?? 0) - (row.startedAt?.getTime() ?? 0);

    const artifact = await artifactOf(env, callId);
    const base = `${env.t.config.publicUrl}/call/${callId}`;
    assert.equal(artifact.recordingUrl, `${base}/mono-recording`);
    assert.equal(artifact.stereoRecordingUrl, `${base}/stereo-recording`);
    assert.deepEqual(artifact.recording, {
      stereoUrl: `${base}/stereo-recording`,
      mono: {
        combinedUrl: `${base}/mono-recording`,
        customerUrl: `${base}/customer-recording`,
        assistantUrl: `${base}/assistant-recording`,
      },
    });
    assert.equal(artifact.recordingStorage, undefined, "where it is stored is not shown");
    assert.equal(artifact.recordingError, undefined);

    const stereo = parseWav((await download(`${base}/stereo-recording`, env.org.key)).body);
    assert.equal(stereo.channels, 2);
    assert.equal(stereo.sampleRate, 8000, "a phone call is recorded at its own rate");
    const seconds = (stereo.samples[0]?.length ?? 0) / 8000;
    assert.ok(Math.abs(seconds * 1000 - callMs) < 300, `${seconds} s recorded of a ${callMs} ms call`);
    const customer = voicedBlocks(stereo.samples[0] as Int16Array, 8000);
    const assistant = voicedBlocks(stereo.samples[1] as Int16Array, 8000);
    // The caller's second of speech, and nothing else, on the left.
    assert.equal(stretches(customer).length, 1, JSON.stringify(stretches(customer)));
    assert.ok(Math.abs(voicedMs(customer) - 1000) <= 100, `customer voiced ${voicedMs(customer)} ms`);
    // The first message, then the reply after the caller, on the right, as long as what was sent.
    const spoke = stretches(assistant);
    assert.equal(spoke.length, 2, JSON.stringify(spoke));
    const [greeting, reply] = spoke as [[number, number], [number, number]];
    assert.ok(
      Math.abs((greeting[1] - greeting[0] + 1) * BLOCK_MS - "Hello there.".length * MS_PER_CHAR) <= 60,
    );
    const said = stretches(customer)[0] as [number, number];
    assert.ok(reply[0] > said[1], "the reply after the caller");
    const replyMs = (reply[1] - reply[0] + 1) * BLOCK_MS;
    const sentMs = "You said: I would like to check my order status.".length * MS_PER_CHAR;
    assert.ok(Math.abs(replyMs - sentMs) <= 60, `reply ${replyMs} ms, sent ${sentMs} ms`);
    assert.ok(customer.filter((v, i) => v && assistant[i]).length <= 2, "nobody talks over anyone");

    // The mono tracks: each party alone, and the two mixed.
    const [left, right] = stereo.samples as [Int16Array, Int16Array];
    const cust = parseWav((await download(`${base}/customer-recording`, env.org.key)).body);
    const asst = parseWav((await download(`${base}/assistant-recording`, env.org.key)).body);
    const mono = parseWav((await download(`${base}/mono-recording`, env.org.key)).body);
    for (const w of [cust, asst, mono]) {
      assert.equal(w.channels, 1);
      assert.equal(w.sampleRate, 8000);
    }
    assert.deepEqual(cust.samples[0], left);
    assert.deepEqual(asst.samples[0], right);
    const mixed = mono.samples[0] as Int16Array;
    for (let i = 0; i < mixed.length; i += 97) {
      assert.equal(mixed[i], Math.max(-32768, Math.min(32767, (left[i] as number) + (right[i] as number))));
    }

    // The end-of-call report names it as Vapi's does, with presigned URLs, and not where it is kept.
    const report = await waitUntil(
      () =>
        env.customer.received.find(
          (r) =>
            r.json.message?.type === "end-of-call-report" &&
            (r.json.message.call as { id?: string } | undefined)?.id === callId,
        ),
      10_000,
      "the end-of-call report",
    );
    const message = report.json.message as Record<string, unknown> & { artifact: Artifact };
    assert.equal(message.recordingUrl, `${base}/mono-recording`);
    assert.equal(message.stereoRecordingUrl, `${base}/stereo-recording`);
    assert.equal(message.artifact.recordingUrl, `${base}/mono-recording`);
    assert.equal(message.artifact.recordingStorage, undefined);
    assert.ok(message.artifact.presignedMonoUrl);
    const viaReport = await fetch(message.artifact.presignedMonoUrl);
    assert.equal(viaReport.status, 200);
    assert.deepEqual(parseWav(Buffer.from(await viaReport.arrayBuffer())).samples[0], mixed);
  });

  it("a barge-in: the assistant's channel stops where the caller stopped hearing it", async () => {
    const long = `Thanks for calling. ${"Our opening hours are nine to five on weekdays and ten to two on Saturdays. ".repeat(3)}`;
    const { sim } = await callAssistant(env, {
      firstMessage: long,
      firstMessageInterruptionsEnabled: true,
      stopSpeakingPlan: { numWords: 0, voiceSeconds: 0.2, backoffSeconds: 1 },
    });
    await waitUntil(() => sim.heardBytes > 8 * 800, 5000, "the first message playing");
    await sim.say("Wait, stop", 800);
    await waitUntil(() => sim.clears > 0, 3000, "the barge-in");
    await new Promise((r) => setTimeout(r, 1500));
    await sim.hangup();
    await finalizedCall(env, sim.callSid);
    const stereo = parseWav(
      (await download(`${env.t.config.publicUrl}/call/${callIdOf(sim)}/stereo-recording`, env.org.key)).body,
    );
    const customer = voicedBlocks(stereo.samples[0] as Int16Array, 8000);
    const assistant = voicedBlocks(stereo.samples[1] as Int16Array, 8000);
    const spoke = stretches(customer)[0];
    const lastAssistant = stretches(assistant).at(-1);
    assert.ok(spoke && lastAssistant);
    const cutAfterMs = (lastAssistant[1] - spoke[0]) * BLOCK_MS;
    assert.ok(cutAfterMs <= 500, `assistant cut ${cutAfterMs} ms after the caller began`);
    // Silence on the assistant's side from the cut to the end of the call.
    assert.equal(assistant.slice(lastAssistant[1] + 1).filter(Boolean).length, 0);
    assert.ok(voicedMs(assistant) < long.length * MS_PER_CHAR * 0.6, "far less than the whole message");
  });

  it("a web call (PCM 16 kHz): recorded at the client's rate, the caller on the left, the voice on the right", async () => {
    const assistantId = await createAssistant(env, { firstMessage: "Hi." });
    const created = await env.t.request({
      method: "POST",
      url: "/call",
      key: env.org.key,
      payload: {
        assistantId,
        transport: { provider: "vapi.websocket", audioFormat: { format: "pcm_s16le", sampleRate: 16000 } },
      },
    });
    assert.equal(created.statusCode, 201, created.body);
    const { id: callId, transport } = created.json() as {
      id: string;
      transport: { websocketCallUrl: string };
    };
    const client = await WebCallClient.connect(transport.websocketCallUrl, {
      format: { encoding: "linear16", sampleRate: 16000 },
      utterances: env.deepgram,
    });
    await waitUntil(() => client.receivedBytes >= 16 * 2 * "Hi.".length * MS_PER_CHAR, 5000, "the greeting");
    await new Promise((r) => setTimeout(r, 300));
    await client.say("What time is it", 800);
    const replyBytes = 16 * 2 * "You said: What time is it.".length * MS_PER_CHAR;
    await waitUntil(
      () => client.receivedBytes >= 16 * 2 * "Hi.".length * MS_PER_CHAR + replyBytes,
      8000,
      "the reply",
    );
    await new Promise((r) => setTimeout(r, 500));
    client.hangup();
    await client.closed;
    await waitUntil(
      async () => (await env.t.db.call.findUnique({ where: { id: callId } }))?.finalizedAt,
      8000,
      "the end",
    );
    const artifact = await artifactOf(env, callId);
    assert.ok(artifact.presignedStereoUrl);
    const res = await fetch(artifact.presignedStereoUrl);
    assert.equal(res.status, 200);
    const stereo = parseWav(Buffer.from(await res.arrayBuffer()));
    assert.equal(stereo.sampleRate, 16000);
    const customer = voicedBlocks(stereo.samples[0] as Int16Array, 16000);
    const assistant = voicedBlocks(stereo.samples[1] as Int16Array, 16000);
    assert.equal(stretches(customer).length, 1, JSON.stringify(stretches(customer)));
    assert.ok(Math.abs(voicedMs(customer) - 800) <= 100, `customer voiced ${voicedMs(customer)} ms`);
    const spoke = stretches(assistant);
    assert.equal(spoke.length, 2, JSON.stringify(spoke));
    assert.ok((spoke[1] as [number, number])[0] > (stretches(customer)[0] as [number, number])[1]);
  });

  it("Range requests, signed URLs without a key (refused when altered or expired), another organisation's key gets a 404", async () => {
    const { sim } = await callAssistant(env, { firstMessage: "Hello there." });
    const callId = callIdOf(sim);
    await waitForSpoken(sim, 1);
    await sim.hangup();
    await finalizedCall(env, sim.callSid);
    const artifact = await artifactOf(env, callId);
    assert.ok(artifact.presignedMonoUrl && artifact.presignedUrlsExpiresAt);
    const expiresIn = Date.parse(artifact.presignedUrlsExpiresAt) - Date.now();
    assert.ok(expiresIn > 55 * 60_000 && expiresIn <= 60 * 60_000 + 1000, `expires in ${expiresIn} ms`);
    for (const [field, track] of [
      ["presignedMonoUrl", "mono"],
      ["presignedStereoUrl", "stereo"],
      ["presignedCustomerUrl", "customer"],
      ["presignedAssistantUrl", "assistant"],
    ] as const) {
      assert.match(artifact[field] ?? "", new RegExp(`/call/${callId}/recording/${track}\\.wav\\?expires=`));
    }
    const whole = await fetch(artifact.presignedMonoUrl);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get("content-type"), "audio/wav");
    assert.equal(whole.headers.get("accept-ranges"), "bytes");
    const all = Buffer.from(await whole.arrayBuffer());
    assert.equal(Number(whole.headers.get("content-length")), all.length);

    const part = await fetch(artifact.presignedMonoUrl, { headers: { range: "bytes=40-139" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 40-139/${all.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), all.subarray(40, 140));
    const tail = await fetch(artifact.presignedMonoUrl, { headers: { range: "bytes=-10" } });
    assert.equal(tail.status, 206);
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), all.subarray(all.length - 10));
    const open = await fetch(artifact.presignedMonoUrl, { headers: { range: `bytes=${all.length - 5}-` } });
    assert.deepEqual(Buffer.from(await open.arrayBuffer()), all.subarray(all.length - 5));
    const beyond = await fetch(artifact.presignedMonoUrl, { headers: { range: `bytes=${all.length}-` } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get("content-range"), `bytes */${all.length}`);
    // Derived tracks by any range: odd offsets (half a sample), across the header, a single byte.
    for (const url of [
      artifact.presignedMonoUrl,
      artifact.presignedCustomerUrl,
      artifact.presignedAssistantUrl,
    ]) {
      assert.ok(url);
      const full = Buffer.from(await (await fetch(url)).arrayBuffer());
      assert.equal(full.length, all.length, "every mono track is as long");
      const ranges: Array<[number, number]> = [
        [43, 44],
        [45, 45],
        [45, 1000],
        [1001, full.length - 2],
      ];
      for (const [a, b] of ranges) {
        const r: Response = await fetch(url, { headers: { range: `bytes=${a}-${b}` } });
        assert.equal(r.status, 206);
        assert.equal(r.headers.get("content-range"), `bytes ${a}-${b}/${full.length}`);
        assert.equal(Number(r.headers.get("content-length")), b - a + 1);
        assert.deepEqual(Buffer.from(await r.arrayBuffer()), full.subarray(a, b + 1), `${url} ${a}-${b}`);
      }
    }
    // Through the API key and its redirect too.
    const viaKey = await download(`${env.t.config.publicUrl}/call/${callId}/mono-recording`, env.org.key, {
      range: "bytes=0-43",
    });
    assert.equal(viaKey.res.status, 206);
    assert.deepEqual(viaKey.body, all.subarray(0, 44));

    const altered = artifact.presignedMonoUrl.replace(/signature=./, (m) =>
      m.endsWith("A") ? `${m.slice(0, -1)}B` : `${m.slice(0, -1)}A`,
    );
    assert.equal((await fetch(altered)).status, 403);
    const otherTrack = artifact.presignedMonoUrl.replace("/mono.wav", "/stereo.wav");
    assert.equal((await fetch(otherTrack)).status, 403, "a link is good for its track only");
    const links = { publicUrl: env.t.config.publicUrl, secretsKey: env.t.config.secretsKey };
    const expired = await fetch(signedRecordingUrl(links, callId, "mono", Date.now() - 1000));
    assert.equal(expired.status, 403);
    assert.match((await expired.json()).message, /expired/);
    const noKey = await fetch(`${env.t.config.publicUrl}/call/${callId}/mono-recording`, {
      redirect: "manual",
    });
    assert.equal(noKey.status, 401);
    const foreign = await fetch(`${env.t.config.publicUrl}/call/${callId}/mono-recording`, {
      headers: { authorization: `Bearer ${other.key}` },
      redirect: "manual",
    });
    assert.equal(foreign.status, 404);
  });

  it("DELETE /call/:id erases the recordings; recordingEnabled false records nothing; mp3 is refused at save", async () => {
    const { sim } = await callAssistant(env, { firstMessage: "Hello there." });
    const callId = callIdOf(sim);
    await waitForSpoken(sim, 1);
    await sim.hangup();
    await finalizedCall(env, sim.callSid);
    const artifact = await artifactOf(env, callId);
    assert.ok(artifact.presignedStereoUrl);
    const callDir = path.join(dir, "local", env.org.orgId, callId);
    // The stereo WAV alone: the other tracks are derived from it when downloaded.
    assert.deepEqual(await readdir(callDir), ["stereo.wav"]);
    assert.ok(artifact.presignedMonoUrl && artifact.presignedCustomerUrl);
    assert.equal((await fetch(artifact.presignedMonoUrl)).status, 200);
    const del = await env.t.request({ method: "DELETE", url: `/call/${callId}`, key: env.org.key });
    assert.equal(del.statusCode, 200, del.body);
    assert.deepEqual(await readdir(callDir), []);
    assert.equal((await fetch(artifact.presignedStereoUrl)).status, 404);
    assert.equal((await fetch(artifact.presignedMonoUrl)).status, 404);
    assert.equal((await fetch(artifact.presignedCustomerUrl)).status, 404);

    const off = await callAssistant(env, {
      firstMessage: "Hello there.",
      artifactPlan: { recordingEnabled: false },
    });
    await waitForSpoken(off.sim, 1);
    await off.sim.hangup();
    await finalizedCall(env, off.sim.callSid);
    const none = await artifactOf(env, callIdOf(off.sim));
    assert.equal(none.recordingUrl, undefined);
    assert.equal(none.presignedMonoUrl, undefined);
    const missing = await env.t.request({
      method: "GET",
      url: `/call/${callIdOf(off.sim)}/mono-recording`,
      key: env.org.key,
    });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().message, "Artifact not found");

    const mp3 = await env.t.request({
      method: "POST",
      url: "/assistant",
      key: env.org.key,
      payload: { name: "mp3", artifactPlan: { recordingFormat: "mp3" } },
    });
    assert.equal(mp3.statusCode, 400);
    assert.match(mp3.json().message, /artifactPlan\.recordingFormat "mp3" is not offered/);
    const outside = await env.t.request({
      method: "POST",
      url: "/assistant",
      key: env.org.key,
      payload: { name: "path", artifactPlan: { recordingPath: "../other-org" } },
    });
    assert.equal(outside.statusCode, 400);
    assert.match(outside.json().message, /recordingPath/);
  });

  it("an organisation's s3 credential: the recording goes to its bucket (recordingPath under s3PathPrefix) and downloads from there; an erasure the bucket refuses is a 503 that keeps the call; deleting the call erases it", async () => {
    const org = bucketOwner;
    const cred = await env.t.request({
      method: "POST",
      url: "/credential",
      key: org.key,
      payload: {
        provider: "s3",
        awsAccessKeyId: "S3RVER",
        awsSecretAccessKey: "S3RVER",
        region: "us-east-1",
        s3BucketName: "acme-recordings",
        s3PathPrefix: "calls/",
      },
    });
    assert.equal(cred.statusCode, 201, cred.body);
    assert.equal(cred.json().awsSecretAccessKey, undefined, "the secret is write-only");
    assert.equal(cred.json().s3BucketName, "acme-recordings");
    const badRegion = await env.t.request({
      method: "POST",
      url: "/credential",
      key: org.key,
      payload: {
        provider: "s3",
        awsAccessKeyId: "S3RVER",
        awsSecretAccessKey: "S3RVER",
        region: "evil.example#",
        s3BucketName: "acme-recordings",
        s3PathPrefix: "",
      },
    });
    assert.equal(badRegion.statusCode, 400);

    const orgEnv = { ...env, org };
    const { sim } = await callAssistant(orgEnv, {
      firstMessage: "Hello there.",
      artifactPlan: { recordingPath: "/support" },
    });
    const callId = callIdOf(sim);
    await waitForSpoken(sim, 1);
    await sim.hangup();
    await finalizedCall(env, sim.callSid);
    const client = new S3Client({
      endpoint: s3Url,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: LOCAL_S3_CREDENTIALS,
    });
    try {
      const head = await client.send(
        new HeadObjectCommand({ Bucket: "acme-recordings", Key: `calls/support/${callId}-stereo.wav` }),
      );
      assert.equal(head.ContentType, "audio/wav");
      const { body } = await download(`${env.t.config.publicUrl}/call/${callId}/stereo-recording`, org.key);
      assert.equal(body.length, head.ContentLength);
      const stereo = parseWav(body);
      assert.equal(stretches(voicedBlocks(stereo.samples[1] as Int16Array, 8000)).length, 1, "the greeting");
      // The bucket holds the stereo WAV alone; the other tracks are derived from it as they are read.
      for (const t of ["mono", "customer", "assistant"])
        await assert.rejects(
          client.send(
            new HeadObjectCommand({ Bucket: "acme-recordings", Key: `calls/support/${callId}-${t}.wav` }),
          ),
        );
      const [left, right] = stereo.samples as [Int16Array, Int16Array];
      const track = async (route: string) =>
        parseWav((await download(`${env.t.config.publicUrl}/call/${callId}/${route}`, org.key)).body)
          .samples[0] as Int16Array;
      assert.deepEqual(await track("customer-recording"), left);
      assert.deepEqual(await track("assistant-recording"), right);
      const mono = await track("mono-recording");
      assert.deepEqual(
        mono,
        right.map((r, i) => Math.max(-32768, Math.min(32767, r + (left[i] as number)))),
      );
      // By range from the bucket: an odd start inside the data.
      const ranged = await download(`${env.t.config.publicUrl}/call/${callId}/assistant-recording`, org.key, {
        range: "bytes=1001-3000",
      });
      assert.equal(ranged.res.status, 206);
      const assistantWav = (
        await download(`${env.t.config.publicUrl}/call/${callId}/assistant-recording`, org.key)
      ).body;
      assert.deepEqual(ranged.body, assistantWav.subarray(1001, 3001));
      // The bucket refuses the erasure (the credential's key is no longer one it knows): 503, the call
      // kept. (Moving the credential to another bucket does not move the recording.)
      const credentialId = cred.json().id as string;
      const patch = (payload: Record<string, string>) =>
        env.t.request({ method: "PATCH", url: `/credential/${credentialId}`, key: org.key, payload });
      assert.equal((await patch({ awsAccessKeyId: "NOT-A-KEY", s3BucketName: "elsewhere" })).statusCode, 200);
      const refused = await env.t.request({ method: "DELETE", url: `/call/${callId}`, key: org.key });
      assert.equal(refused.statusCode, 503, refused.body);
      assert.match(
        refused.json().message,
        /Erasing the call's recording failed .*: the call was not deleted; try again/,
      );
      assert.equal(
        (await env.t.request({ method: "GET", url: `/call/${callId}`, key: org.key })).statusCode,
        200,
      );
      assert.equal((await patch({ awsAccessKeyId: "S3RVER" })).statusCode, 200);
      const del = await env.t.request({ method: "DELETE", url: `/call/${callId}`, key: org.key });
      assert.equal(del.statusCode, 200, del.body);
      await assert.rejects(
        client.send(
          new HeadObjectCommand({ Bucket: "acme-recordings", Key: `calls/support/${callId}-stereo.wav` }),
        ),
      );
    } finally {
      client.destroy();
    }
  });

  it("a recording that cannot be stored does not fail the call: it ends as it would, and its artifact says why", async () => {
    const org = noBucket;
    const cred = await env.t.request({
      method: "POST",
      url: "/credential",
      key: org.key,
      payload: {
        provider: "s3",
        awsAccessKeyId: "S3RVER",
        awsSecretAccessKey: "S3RVER",
        region: "us-east-1",
        s3BucketName: "no-such-bucket",
        s3PathPrefix: "",
      },
    });
    assert.equal(cred.statusCode, 201, cred.body);
    const { sim } = await callAssistant({ ...env, org }, { firstMessage: "Hello there." });
    await waitForSpoken(sim, 1);
    await sim.say("Thanks", 500);
    await waitForSpoken(sim, 2);
    await sim.hangup();
    const row = await finalizedCall(env, sim.callSid);
    assert.equal(row.endedReason, "customer-ended-call");
    assert.ok(row.cost !== null, "priced as usual");
    const artifact = await artifactOf(env, callIdOf(sim), org.key);
    assert.equal(artifact.recordingUrl, undefined);
    assert.match(artifact.recordingError ?? "", /bucket/i);
    assert.match(row.transcript ?? "", /User: Thanks/);
    // Nothing left behind in the spool.
    const spool = await readdir(path.join(dir, "local", ".spool")).catch(() => []);
    assert.equal(spool.filter((f) => f.startsWith(callIdOf(sim))).length, 0);
  });

  it("a spool directory that cannot be written (RECORDINGS_DIR is a file): the call ends normally and says why", async () => {
    // The local store's own directory can't be replaced under a running platform; a second media
    // app over the same database with RECORDINGS_DIR pointing at a file stands in for a full or
    // broken disk.
    const file = path.join(dir, "not-a-directory");
    await writeFile(file, "");
    const { buildMedia } = await import("../../apps/media/src/app.ts");
    const { mediaConfigFromEnv } = await import("../../apps/media/src/config.ts");
    const { InProcessQueue } = await import("../../libs/queue/index.ts");
    const { testEnv } = await import("../helpers/api.ts");
    const broken = await buildMedia(
      mediaConfigFromEnv(
        testEnv({
          DATABASE_URL: env.t.database.url,
          SECRETS_KEY: env.t.config.secretsKey.toString("base64"),
          PUBLIC_URL: env.t.config.publicUrl,
          MEDIA_PUBLIC_URL: env.t.config.mediaPublicUrl,
          DEEPGRAM_API_URL: env.deepgram.url,
          OPENAI_BASE_URL: env.openai.baseUrl,
          ELEVENLABS_API_URL: env.elevenlabs.url,
          OPENAI_API_KEY: "sk-platform-openai",
          DEEPGRAM_API_KEY: "platform-deepgram",
          ELEVENLABS_API_KEY: "platform-elevenlabs",
          RECORDINGS_DIR: file,
        }),
      ),
      { db: env.t.db, redis: env.t.redis, queue: new InProcessQueue(), logger: false, sweepIntervalMs: 0 },
    );
    await broken.listen({ port: 0, host: "127.0.0.1" });
    try {
      const assistantId = await createAssistant(env, { firstMessage: "Hi." });
      const created = await env.t.request({
        method: "POST",
        url: "/call",
        key: env.org.key,
        payload: { assistantId, transport: { provider: "vapi.websocket" } },
      });
      assert.equal(created.statusCode, 201, created.body);
      const { id: callId, transport } = created.json() as {
        id: string;
        transport: { websocketCallUrl: string };
      };
      const addr = broken.server.address();
      assert.ok(addr && typeof addr === "object");
      const url = new URL(transport.websocketCallUrl);
      url.port = String(addr.port);
      const client = await WebCallClient.connect(url.href, {
        format: { encoding: "linear16", sampleRate: 16000 },
        utterances: env.deepgram,
      });
      await waitUntil(() => client.receivedBytes > 0, 5000, "the greeting");
      client.hangup();
      await client.closed;
      const row = await waitUntil(
        async () => {
          const r = await env.t.db.call.findUnique({ where: { id: callId } });
          return r?.status === "ended" ? r : undefined;
        },
        8000,
        "the end",
      );
      assert.equal(row.endedReason, "customer-ended-call");
      const artifact = await artifactOf(env, callId);
      assert.equal(artifact.recordingUrl, undefined);
      assert.match(artifact.recordingError ?? "", /writing the recording failed/);
    } finally {
      await broken.close();
    }
  });
});

/**
 * The stereo recording of a call whose media process was killed at `killedAt` after one turn: the
 * audio up to the kill (flushed about every second), the caller's question on the left, the
 * greeting and the answer on the right. Returns the recording and the assistant's voiced stretches.
 */
async function recordedUntilKill(
  artifact: Artifact,
  ended: { startedAt: Date | null },
  killedAt: number,
): Promise<{ stereo: Wav; assistant: Array<[number, number]> }> {
  assert.ok(artifact.presignedStereoUrl, JSON.stringify(artifact));
  const wav = await fetch(artifact.presignedStereoUrl);
  assert.equal(wav.status, 200);
  const stereo = parseWav(Buffer.from(await wav.arrayBuffer()));
  const recordedMs = ((stereo.samples[0]?.length ?? 0) / stereo.sampleRate) * 1000;
  const liveMs = killedAt - (ended.startedAt?.getTime() ?? 0);
  assert.ok(
    recordedMs <= liveMs && recordedMs >= liveMs - 2000,
    `${recordedMs} ms recorded of ${liveMs} ms before the kill (flushed about every second)`,
  );
  const customer = stretches(voicedBlocks(stereo.samples[0] as Int16Array, stereo.sampleRate));
  const assistant = stretches(voicedBlocks(stereo.samples[1] as Int16Array, stereo.sampleRate));
  assert.equal(customer.length, 1, `the caller's question: ${JSON.stringify(customer)}`);
  assert.equal(assistant.length, 2, `the greeting and the answer: ${JSON.stringify(assistant)}`);
  return { stereo, assistant };
}

// A real media process (node apps/media/src/main.ts) killed mid-call with SIGKILL: no drain, no
// last write. The API ends the orphaned call when Twilio reports its end, and stores the spool
// the dead process left on this disk: the audio up to its last flushed second.
describe("a media process killed mid-call", () => {
  let redis: RedisServer;
  let p: FaultPlatform;
  let dir: string;
  const children: AppProcess[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "recordings-killed-"));
    redis = await startRedisServer();
    p = await startFaultPlatform({
      redisUrl: redis.url,
      env: { CALL_LEASE_MS: "4000", RECORDINGS_DIR: dir },
    });
  });
  after(async () => {
    for (const c of children) await c.kill("SIGKILL");
    await p.close();
    await redis.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps the recording up to the last flushed second: the greeting, the caller's question and the answer", async () => {
    const media = await startApp("media", p.appEnv);
    children.push(media);
    const { callId } = await p.callWithOneTurn();
    // The answer has played; a second and a half more lets its end reach the spool.
    await new Promise((r) => setTimeout(r, 1500));
    const killedAt = Date.now();
    await media.kill("SIGKILL");
    const ended = await waitUntil(
      async () => {
        const c = await p.t.db.call.findUnique({ where: { id: callId } });
        const artifact = c?.artifact as Artifact | null;
        return c?.status === "ended" && (artifact?.recordingUrl || artifact?.recordingError) ? c : undefined;
      },
      12_000,
      "the orphaned call's recording",
    );
    assert.equal(ended.endedReason, "call.in-progress.error-vapifault-worker-died");
    const res = await p.t.request({ method: "GET", url: `/call/${callId}`, key: p.org.key });
    const artifact = res.json().artifact as Artifact;
    assert.equal(artifact.recordingError, undefined);
    const { stereo, assistant } = await recordedUntilKill(artifact, ended, killedAt);
    const answerMs =
      ((assistant[1] as [number, number])[1] - (assistant[1] as [number, number])[0] + 1) * BLOCK_MS;
    const sentMs = "You said: What are your opening hours?.".length * MS_PER_CHAR;
    assert.ok(Math.abs(answerMs - sentMs) <= 60, `the whole answer: ${answerMs} ms of ${sentMs} ms`);
    // Its other tracks, derived from the stereo one.
    const [left, right] = stereo.samples as [Int16Array, Int16Array];
    for (const [url, want] of [
      [artifact.presignedCustomerUrl, left],
      [artifact.presignedAssistantUrl, right],
      [
        artifact.presignedMonoUrl,
        right.map((r, i) => Math.max(-32768, Math.min(32767, r + (left[i] as number)))),
      ],
    ] as const) {
      assert.ok(url);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      const wav = parseWav(Buffer.from(await res.arrayBuffer()));
      assert.equal(wav.channels, 1);
      assert.deepEqual(wav.samples[0], want);
    }
    // The spool is gone: stored as the call's recording.
    assert.deepEqual(await readdir(path.join(dir, ".spool")), []);
  });
});

// Kubernetes: each media pod spools to its own emptyDir, and recordings go to the platform's bucket.
// A media process killed mid-call (OOM, a crash) is restarted in the same pod with the same
// emptyDir; the API, which cannot see that disk, ends the call on Twilio's report first and says the
// recording was not on its disk. The restarted process finds the spool, stores it in the bucket
// and puts the recording on the call.
describe("a media container killed mid-call and restarted on its own disk (Kubernetes emptyDir)", () => {
  let redis: RedisServer;
  let p: FaultPlatform;
  let dir: string;
  let s3: LocalS3;
  const children: AppProcess[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "recordings-restarted-"));
    s3 = await startLocalS3(dir, ["platform-recordings"]);
    const endpoint = s3.endpoint;
    redis = await startRedisServer();
    p = await startFaultPlatform({
      redisUrl: redis.url,
      env: {
        CALL_LEASE_MS: "4000",
        // The API's own disk: not the media pod's.
        RECORDINGS_DIR: path.join(dir, "api"),
        RECORDINGS_S3_BUCKET: "platform-recordings",
        RECORDINGS_S3_ENDPOINT: endpoint,
        RECORDINGS_S3_FORCE_PATH_STYLE: "true",
        RECORDINGS_S3_ACCESS_KEY_ID: "S3RVER",
        RECORDINGS_S3_SECRET_ACCESS_KEY: "S3RVER",
      },
    });
  });
  after(async () => {
    for (const c of children) await c.kill("SIGKILL");
    await p.close();
    await redis.close();
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("the call ends at once with recordingError; the restarted process stores the spool and the call gets its recording", async () => {
    const mediaEnv = { ...p.appEnv, RECORDINGS_DIR: path.join(dir, "media-pod") };
    const media = await startApp("media", mediaEnv);
    children.push(media);
    const { callId } = await p.callWithOneTurn();
    await new Promise((r) => setTimeout(r, 1500));
    const killedAt = Date.now();
    await media.kill("SIGKILL");
    const ended = await waitUntil(
      async () => {
        const c = await p.t.db.call.findUnique({ where: { id: callId } });
        const artifact = c?.artifact as Artifact | null;
        return c?.status === "ended" && artifact?.recordingError ? c : undefined;
      },
      12_000,
      "the orphaned call ended where its spool cannot be read",
    );
    assert.equal(ended.endedReason, "call.in-progress.error-vapifault-worker-died");
    assert.match(
      (ended.artifact as Artifact).recordingError ?? "",
      /not on this host's disk: a media process restarted on that disk stores it/,
    );
    // The container restarts with the same emptyDir.
    const restarted = await startApp("media", mediaEnv);
    children.push(restarted);
    await waitUntil(
      async () => {
        const c = await p.t.db.call.findUnique({ where: { id: callId } });
        return (c?.artifact as Artifact | null)?.recordingUrl ? c : undefined;
      },
      15_000,
      "the recording put on the call by the restarted process",
    );
    const res = await p.t.request({ method: "GET", url: `/call/${callId}`, key: p.org.key });
    const artifact = res.json().artifact as Artifact;
    assert.equal(artifact.recordingError, undefined);
    assert.equal(
      artifact.transcript,
      (ended.artifact as Artifact).transcript,
      "the rest of the artifact kept",
    );
    await recordedUntilKill(artifact, ended, killedAt);
    // The mono track, derived from the stored one, downloads through Vapi's route too.
    const mono = await fetch(artifact.presignedMonoUrl ?? "");
    assert.equal(mono.status, 200);
    assert.equal(parseWav(Buffer.from(await mono.arrayBuffer())).channels, 1);
    // Stored in the bucket, nothing left on the pod's disk.
    assert.deepEqual(await readdir(path.join(dir, "media-pod", ".spool")), []);
  });
});
