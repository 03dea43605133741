// Send one chat request to hfbus and print the answer as it streams in.
//
//   NATS_URL=nats://127.0.0.1:4222 node publish-chat.mjs "Write a haiku about NATS" [--model org/model] [--max-tokens 64]
//   [--id <request id>] (default: a random UUID; keep ids unguessable, they are what cancels and kept finals go by)
//
// Environment: NATS_URL (comma-separated servers, default nats://127.0.0.1:4222), HFBUS_PREFIX (default "ai").
// Exit status: 0 after the `result`; 1 after an `error` (its code and message go to stderr) or when nobody
// serves the subject; 2 when no output arrived within --timeout seconds.
// The wire contract is in schemas/generated/ (JSON Schema per tag and asyncapi.json).
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { connect, createInbox, headers } from "nats";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string" },
    id: { type: "string" },
    "max-tokens": { type: "string" },
    timeout: { type: "string", default: "120" },
  },
});
const prompt = positionals.join(" ") || "Hello from Node.js";
const prefix = process.env.HFBUS_PREFIX || "ai";
const servers = (process.env.NATS_URL || "nats://127.0.0.1:4222").split(",");

const nc = await connect({ servers });
const inbox = createInbox();
const request = { id: values.id || randomUUID(), messages: [{ role: "user", content: prompt }] };
if (values.model) request.model = values.model;
if (values["max-tokens"]) request.max_tokens = Number(values["max-tokens"]);
// The reply inbox also goes in the body: a deployment in durable mode stores requests in JetStream,
// which keeps no NATS reply subject. There the stream's publish ack reaches the inbox first (no `type`).
request.reply_to = inbox;

const h = headers();
h.set("Content-Type", "application/json");
h.set("Nats-Msg-Id", request.id); // JetStream dedupe: publishing the same id twice runs it once

// Subscribe before publishing, so not even the first chunk can be missed.
const sub = nc.subscribe(inbox);
let timedOut = false;
let timer;
const rearm = () => {
  clearTimeout(timer);
  timer = setTimeout(() => {
    timedOut = true;
    sub.unsubscribe();
  }, Number(values.timeout) * 1000);
};
rearm();
nc.publish(`${prefix}.chat`, new TextEncoder().encode(JSON.stringify(request)), { reply: inbox, headers: h });

// Durable mode keeps each final output in stream <work-queue stream>_FINALS, subject <prefix>.final.chat.<id>.
// One missed while the connection was away is read back from there after a silence, and only when it is this
// request's (`id`) and answers this very message (header `Hfbus-Request-Seq` = the publish ack's `seq`): a final
// kept for an earlier request that reused the id, or written by anyone else, is not this answer.
let publishAck;
let kept;
async function keptFinal() {
  try {
    const jsm = await nc.jetstreamManager();
    const stored = await jsm.streams.getMessage(`${publishAck.stream}_FINALS`, {
      last_by_subj: `${prefix}.final.chat.${request.id}`,
    });
    if (stored.header?.get("Hfbus-Request-Seq") !== String(publishAck.seq)) return undefined;
    const out = JSON.parse(new TextDecoder().decode(stored.data));
    return out.id === request.id && (out.type === "result" || out.type === "error") ? out : undefined;
  } catch {
    return undefined; // nothing kept yet, or not allowed to read it: keep waiting for the live output
  }
}
let lastOutputAt = Date.now();
const poll = setInterval(async () => {
  if (publishAck === undefined || kept !== undefined || Date.now() - lastOutputAt < 2000) return;
  const found = await keptFinal();
  if (found !== undefined && kept === undefined) {
    kept = found;
    sub.unsubscribe();
  }
}, 1000);

let status = 2;
let streamed = false;
for await (const msg of sub) {
  rearm();
  lastOutputAt = Date.now();
  if (msg.headers?.code === 503) {
    console.error(`error no_responders: nothing serves ${prefix}.chat`);
    status = 1;
    break;
  }
  const out = JSON.parse(new TextDecoder().decode(msg.data));
  if (out.type === undefined) {
    if (out.error) {
      console.error(`error ${out.error.code}: ${out.error.description}`); // the stream refused the request
      status = 1;
      break;
    }
    if (out.stream && out.seq) publishAck = out; // JetStream's publish ack in durable mode
    continue;
  }
  if (out.id !== request.id) continue; // not this request's output, whoever sent it
  status = show(out);
  if (status !== undefined) break;
}
if (status === undefined) status = 2;
if (kept !== undefined) {
  timedOut = false;
  status = show(kept);
}
clearInterval(poll);
clearTimeout(timer);
if (timedOut) console.error(`timeout: no output for ${values.timeout}s`);
await nc.close();
process.exit(status);

// Prints one output; the exit status once it is the final one, else undefined.
function show(out) {
  if (out.type === "chunk") {
    if (out.reasoning) process.stderr.write(out.reasoning);
    process.stdout.write(out.delta);
    streamed = true;
  } else if (out.type === "result") {
    if (!streamed) process.stdout.write(out.text); // with `stream: false`, or read back, the result comes alone
    process.stdout.write("\n");
    const usage = out.usage ?? {};
    console.error(`[${out.model} via ${out.provider ?? "router"}; ${usage.prompt_tokens}+${usage.completion_tokens} tokens]`);
    return 0;
  } else if (out.type === "error") {
    console.error(`error ${out.code}: ${out.message}`);
    return 1;
  }
  // `progress` and any type added later: nothing to print. (A redelivered durable request starts again
  // with `attempt` + 1 and `seq` 0; a real client would reset what it showed.)
  return undefined;
}
