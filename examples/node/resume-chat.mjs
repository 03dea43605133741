// A resumable chat: the outputs are read from the stream HFBUS_OUT through an ordered consumer, which replays
// what this process missed (a reconnect, a restart of this process with --id) and then follows live.
//
//   NATS_URL=nats://127.0.0.1:4222 node resume-chat.mjs "Write a haiku about NATS" [--id ID] [--model m]
//   node resume-chat.mjs --id ID --replay     # nothing is sent: read request ID's kept outputs again
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { connect, headers } from "nats";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { id: { type: "string" }, model: { type: "string" }, replay: { type: "boolean" } } });
const prefix = process.env.HFBUS_PREFIX || "ai";
const stream = prefix === "ai" ? "HFBUS_OUT" : `HFBUS_${prefix.toUpperCase().replace(/[.-]/g, "_")}_OUT`;
const nc = await connect({ servers: (process.env.NATS_URL || "nats://127.0.0.1:4222").split(",") });
const id = values.id ?? randomUUID();

// Subscribe first: the ordered consumer starts at the stream's beginning for this subject, so nothing is missed.
const consumer = await nc.jetstream().consumers.get(stream, { filterSubjects: [`${prefix}.out.chat.${id}`] });
const outputs = await consumer.consume();
if (!values.replay) {
  const h = headers();
  h.set("Nats-Msg-Id", id); // a re-sent request is run once
  const request = { id, resumable: true, messages: [{ role: "user", content: positionals.join(" ") || "Hello" }] };
  if (values.model) request.model = values.model;
  nc.publish(`${prefix}.chat`, JSON.stringify(request), { headers: h });
}

let attempt = 0, next = 0, status = 2;
for await (const m of outputs) {
  const out = m.json();
  if (out.attempt > attempt) [attempt, next] = [out.attempt, 0]; // a new run starts again at seq 0
  if (out.attempt < attempt && out.type === "chunk") continue; // a superseded run's late chunk
  if (out.type === "chunk" && out.seq < next) continue; // already shown
  next = out.seq + 1;
  if (out.type === "chunk") process.stdout.write(out.delta);
  if (out.type === "result") { process.stdout.write("\n"); status = 0; break; }
  if (out.type === "error") { console.error(`error ${out.code}: ${out.message}`); status = 1; break; }
}
await nc.close();
process.exit(status);
