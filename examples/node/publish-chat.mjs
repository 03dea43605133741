// Send one chat request to hfbus and print the answer as it streams in.
//
//   NATS_URL=nats://127.0.0.1:4222 node publish-chat.mjs "Write a haiku about NATS" [--model org/model] [--max-tokens 64]
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
    "max-tokens": { type: "string" },
    timeout: { type: "string", default: "120" },
  },
});
const prompt = positionals.join(" ") || "Hello from Node.js";
const prefix = process.env.HFBUS_PREFIX || "ai";
const servers = (process.env.NATS_URL || "nats://127.0.0.1:4222").split(",");

const nc = await connect({ servers });
const inbox = createInbox();
const request = { id: randomUUID(), messages: [{ role: "user", content: prompt }] };
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

let status = 2;
let streamed = false;
for await (const msg of sub) {
  rearm();
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
    continue; // JetStream's publish ack in durable mode
  }
  if (out.type === "chunk") {
    if (out.reasoning) process.stderr.write(out.reasoning);
    process.stdout.write(out.delta);
    streamed = true;
  } else if (out.type === "result") {
    if (!streamed) process.stdout.write(out.text); // with `stream: false` the result comes alone
    process.stdout.write("\n");
    const usage = out.usage ?? {};
    console.error(`[${out.model} via ${out.provider ?? "router"}; ${usage.prompt_tokens}+${usage.completion_tokens} tokens]`);
    status = 0;
    break;
  } else if (out.type === "error") {
    console.error(`error ${out.code}: ${out.message}`);
    status = 1;
    break;
  }
  // `progress` and any type added later: nothing to print. (A redelivered durable request starts again
  // with `attempt` + 1 and `seq` 0; a real client would reset what it showed.)
}
clearTimeout(timer);
if (timedOut) console.error(`timeout: no output for ${values.timeout}s`);
await nc.close();
process.exit(status);
