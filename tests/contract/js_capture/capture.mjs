// Records what @huggingface/inference 4.13.30 sends for the pairs only it supports (hfbus's JS_ONLY rows).
//
// Regenerate captures.json (needs node >= 20):
//   mkdir /tmp/hfjs && cd /tmp/hfjs && npm init -y && npm install @huggingface/inference@4.13.30
//   cp <repo>/tests/contract/js_capture/capture.mjs . && node capture.mjs > <repo>/tests/contract/js_capture/captures.json
//
// Every request goes to a local recorder instead of the network (the client's own fetch option and the global
// fetch its pollers use); the Hub answers the provider mapping, the upstream answers each case's canned replies.
import { InferenceClient } from "@huggingface/inference";

const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const PROMPT = "a lighthouse at dawn";
const PNG = Buffer.from("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR input image", "latin1");
const FLAC = Buffer.from("fLaC\x00\x00\x00\x22 input audio", "latin1");
const OUT_PNG = Buffer.from("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR generated image", "latin1");
const OUT_MP4 = Buffer.from("\x00\x00\x00\x20ftypisom generated video", "latin1");
const VIDEO = "https://faas-output-video.novita.ai/minimax/out.mp4";
const json = (body) => ({ status: 200, type: "application/json", body: Buffer.from(JSON.stringify(body)) });

const CASES = [
  {
    provider: "deepinfra", task: "text-to-image", hf_model: "black-forest-labs/FLUX.1-dev",
    provider_id: "black-forest-labs/FLUX-1-dev", mapping_task: "text-to-image",
    fields: { prompt: PROMPT, negative_prompt: "blurry", width: 768, height: 512, steps: 20, guidance_scale: 3.5, seed: 42 },
    call: (c, m) => c.textToImage({ model: m, provider: "deepinfra", inputs: PROMPT, parameters: {
      negative_prompt: "blurry", width: 768, height: 512, num_inference_steps: 20, guidance_scale: 3.5, seed: 42 } }),
    replies: { "POST https://router.huggingface.co/deepinfra/v1/openai/images/generations": [json({ data: [{ b64_json: b64(OUT_PNG) }] })] },
  },
  {
    provider: "together", task: "automatic-speech-recognition", hf_model: "openai/whisper-large-v3",
    provider_id: "openai/whisper-large-v3", mapping_task: "automatic-speech-recognition",
    fields: { media_b64: b64(FLAC), media_type: "audio/flac", language: "en" },
    call: (c, m) => c.automaticSpeechRecognition({ model: m, provider: "together",
      data: new Blob([FLAC], { type: "audio/flac" }), parameters: { language: "en" } }),
    replies: { "POST https://router.huggingface.co/together/v1/audio/transcriptions": [json({ text: "hello world",
      segments: [{ id: 0, start: 0, end: 1.5, text: "hello world" }] })] },
  },
  {
    provider: "novita", task: "image-to-video", hf_model: "MiniMaxAI/MiniMax-H3",
    provider_id: "MiniMax-H3", mapping_task: "image-text-to-video",
    fields: { prompt: PROMPT, media_b64: b64(PNG), media_type: "image/png", num_frames: 81, seed: 42 },
    call: (c, m) => c.imageTextToVideo({ model: m, provider: "novita", inputs: new Blob([PNG], { type: "image/png" }),
      parameters: { prompt: PROMPT, num_frames: 81, seed: 42 } }),
    replies: {
      "POST https://router.huggingface.co/novita/v3/minimax/v2/video_generation": [json({ task_id: "mm-1" })],
      "GET https://router.huggingface.co/novita/v3/minimax/v2/query/video_generation/mm-1": [
        json({ task: { status: "running" } }), json({ task: { status: "succeeded", content: { url: VIDEO } } })],
      [`GET ${VIDEO}`]: [{ status: 200, type: "video/mp4", body: OUT_MP4 }],
    },
  },
];

async function record(input, init) {
  const request = new Request(input, init);
  const body = request.body ? Buffer.from(await request.arrayBuffer()) : Buffer.alloc(0);
  const headers = Object.fromEntries([...request.headers.entries()]);
  return { method: request.method, url: request.url, headers, body_b64: b64(body) };
}

// The client's pollers wait on unref'd timers; this keeps node alive through them.
const keepAlive = setInterval(() => {}, 1000);
const realFetch = globalThis.fetch;
const out = [];
for (const c of CASES) {
  const wires = [];
  const queues = Object.fromEntries(Object.entries(c.replies).map(([k, v]) => [k, [...v]]));
  const fake = async (input, init) => {
    // The client decodes base64 outputs by fetching a data: URL; that is not a request to anyone.
    if (String(input?.url ?? input).startsWith("data:")) return realFetch(input, init);
    const wire = await record(input, init);
    if (new URL(wire.url).host === "huggingface.co") {
      const mapping = { [c.provider]: { status: "live", providerId: c.provider_id, task: c.mapping_task } };
      return new Response(JSON.stringify({ id: c.hf_model, inferenceProviderMapping: mapping }), {
        headers: { "content-type": "application/json" } });
    }
    wires.push(wire);
    const queue = queues[`${wire.method} ${wire.url}`] ?? [];
    const reply = queue.length > 1 ? queue.shift() : queue[0];
    if (!reply) return new Response(JSON.stringify({ error: "no canned reply" }), { status: 404 });
    return new Response(reply.body, { status: reply.status, headers: { "content-type": reply.type } });
  };
  globalThis.fetch = fake;
  const client = new InferenceClient("hf_contract_router_token", { fetch: fake });
  const result = await c.call(client, c.hf_model);
  const output = result instanceof Blob ? { bytes_b64: b64(Buffer.from(await result.arrayBuffer())) } : { text: result.text };
  const replies = Object.fromEntries(Object.entries(c.replies).map(([k, v]) => [k, v.map((r) => ({
    status: r.status, type: r.type, body_b64: b64(r.body) }))]));
  out.push({ provider: c.provider, task: c.task, hf_model: c.hf_model, provider_id: c.provider_id,
    fields: c.fields, replies, wires, output });
}
clearInterval(keepAlive);
process.stdout.write(JSON.stringify({ client: "@huggingface/inference 4.13.30", cases: out }, null, 1) + "\n");
