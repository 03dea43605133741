// Playground: a prompt to any catalog model through the gateway's own OpenAI API, with a key the console mints
// for itself (revoked and re-made on each sign-in; the admin key never goes to /v1).
import { api, el, fill, usd } from "./api.js";

const $ = (selector) => document.querySelector(selector);
const PLAYABLE = ["chat", "text2pic", "text2vid", "text2sound", "vectorize"];
let key = null;
let models = [];

async function playKey(fresh = false) {
  if (!key || fresh) key = (await api("playground-key", { method: "POST" })).key;
  return key;
}

async function v1(path, init, retried = false) {
  const response = await fetch(`/v1/${path}`, {
    ...init,
    headers: { ...(init.headers || {}), Authorization: `Bearer ${await playKey()}` },
  });
  if (response.status === 401 && !retried) {
    await playKey(true); // another console tab made a new playground key, which revoked ours
    return v1(path, init, true);
  }
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new Error(data?.error?.message || `${response.status} ${response.statusText}`);
  }
  return response;
}

const json = (body) => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

function meta(parts) {
  $("#play-meta").textContent = parts.filter(Boolean).join(" · ");
}

async function chat(model, prompt, out) {
  const response = await v1("chat/completions", json({ model, messages: [{ role: "user", content: prompt }], stream: true, stream_options: { include_usage: true } }));
  const text = el("span", { id: "play-text" });
  fill(out, text);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let usage = null;
  let tokens = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("");
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) {
        text.append(delta); // one text node per delta: the answer grows as the tokens arrive
        tokens += 1;
        out.dataset.chunks = String(tokens);
      }
      if (chunk.usage) usage = chunk;
    }
  }
  meta([
    usage && `${usage.usage.prompt_tokens} prompt + ${usage.usage.completion_tokens} completion tokens`,
    usage?.provider && `provider ${usage.provider}`,
    usage && `cost ${usd(usage.cost_usd)}`,
    `${tokens} chunks`,
  ]);
}

async function image(model, prompt, out) {
  const reply = await (await v1("images/generations", json({ model, prompt, response_format: "url" }))).json();
  fill(out, el("img", { src: reply.data[0].url, alt: `Generated image: ${prompt}`, id: "play-image" }));
  meta([reply.provider && `provider ${reply.provider}`, `cost ${usd(reply.cost_usd)}`, reply.model]);
}

async function video(model, prompt, out) {
  const progress = $("#play-progress");
  let job = await (await v1("videos", json({ model, prompt }))).json();
  progress.hidden = false;
  out.dataset.progressShown = "true"; // what the browser test checks: the bar came before the video
  fill(out, el("p", { role: "status" }, "Video queued…"));
  const deadline = Date.now() + 15 * 60 * 1000;
  while (job.status === "queued" || job.status === "in_progress") {
    progress.value = job.progress;
    out.firstChild.textContent = `Video ${job.status.replace("_", " ")}: ${job.progress}%`;
    if (Date.now() > deadline) throw new Error("the video took longer than 15 minutes");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    job = await (await v1(`videos/${job.id}`, { method: "GET" })).json();
  }
  progress.value = 100;
  if (job.status !== "completed") throw new Error(job.error?.message || `the video ${job.status}`);
  const blob = await (await v1(`videos/${job.id}/content`, { method: "GET" })).blob();
  fill(out, el("video", { src: URL.createObjectURL(blob), controls: true, id: "play-video", "aria-label": `Generated video: ${prompt}` }));
  progress.hidden = true;
  meta([job.model, `${job.seconds} s`, job.size]);
}

async function speech(model, prompt, out) {
  const response = await v1("audio/speech", json({ model, input: prompt }));
  const blob = await response.blob();
  fill(out, el("audio", { src: URL.createObjectURL(blob), controls: true, id: "play-audio", "aria-label": "Spoken answer" }));
  meta([`${(blob.size / 1024).toFixed(1)} KiB ${blob.type}`]);
}

async function embed(model, prompt, out) {
  const reply = await (await v1("embeddings", json({ model, input: prompt }))).json();
  const vector = reply.data[0].embedding;
  fill(out, el("p", {}, `${vector.length} dimensions: [${vector.slice(0, 6).map((x) => x.toFixed(4)).join(", ")}, …]`));
  meta([`${reply.usage.prompt_tokens} tokens`, reply.model]);
}

const BY_TAG = { chat, text2pic: image, text2vid: video, text2sound: speech, vectorize: embed };

async function send(event) {
  event.preventDefault();
  const name = $("#play-model").value;
  const model = models.find((m) => m.name === name);
  const prompt = $("#play-prompt").value;
  const out = $("#play-output");
  const button = $("#play-send");
  button.disabled = true;
  out.setAttribute("aria-busy", "true");
  delete out.dataset.chunks;
  delete out.dataset.progressShown;
  $("#play-progress").hidden = true;
  meta([]);
  fill(out);
  try {
    await BY_TAG[model.tag](model.name, prompt, out);
  } catch (err) {
    fill(out, el("p", { class: "error", role: "alert" }, err.message));
  } finally {
    button.disabled = false;
    out.setAttribute("aria-busy", "false");
  }
}

async function loadModels() {
  if (models.length) return;
  const data = await api("models");
  models = data.models.filter((m) => PLAYABLE.includes(m.tag));
  const select = $("#play-model");
  fill(
    select,
    PLAYABLE.map((tag) =>
      el("optgroup", { label: tag }, models.filter((m) => m.tag === tag).map((m) => el("option", { value: m.name }, `${m.display_name} (${m.name})`))),
    ),
  );
}

$("#play-form").addEventListener("submit", send);
window.addEventListener("hfbus:signed-out", () => (key = null));

export function start() {
  loadModels().catch((err) => meta([err.message]));
}
export function stop() {}
