// Status: the HuggingFace token (configured, valid, account, last refusals) and the NATS connection.
import { api, ago, definitions, el, poller, when } from "./api.js";

const $ = (selector) => document.querySelector(selector);

function verdict(ok, yes, no, unknown = "unknown") {
  if (ok === null || ok === undefined) return el("span", { class: "warn" }, unknown);
  return ok ? el("span", { class: "ok" }, yes) : el("span", { class: "bad" }, no);
}

function refusal(entry) {
  if (!entry) return "none seen";
  return `${ago(entry.at)} (${when(entry.at)}), ${entry.source}${entry.model ? `, ${entry.model}` : ""}`;
}

async function load(refresh = false) {
  const data = await api(refresh ? "status?refresh=1" : "status");
  const hf = data.huggingface;
  const account = hf.account;
  definitions($("#token-status"), [
    ["Configured", verdict(hf.configured, "yes", "no: set HUGGINGFACE_API_KEY or HF_TOKEN")],
    ["Valid", hf.configured ? verdict(hf.valid, "yes (the Hub's whoami accepts it)", "no", "the Hub did not answer") : "—"],
    ["Account", account ? `${account.name}${account.fullname ? ` (${account.fullname})` : ""} · ${account.type}` : "—"],
    ["Token", account && account.token_name ? `${account.token_name} (${account.token_role || "role unknown"})` : "—"],
    ["Checked", hf.checked_at ? ago(hf.checked_at) : "—"],
    ...(hf.error ? [["Hub said", hf.error]] : []),
    ["Last unauthorized", refusal(hf.last_refusals?.unauthorized)],
    ["Last payment required", refusal(hf.last_refusals?.payment_required)],
  ]);
  const nats = data.nats;
  const usage = nats.jetstream_usage;
  definitions($("#nats-status"), [
    ["Connection", verdict(nats.connected, `connected to ${nats.server}`, "disconnected")],
    ["Server", nats.server_version ? `nats-server ${nats.server_version}${nats.server_name ? ` (${nats.server_name})` : ""}` : "—"],
    ["Mode", nats.mode],
    ["JetStream", verdict(nats.jetstream, "on", "off")],
    ...(usage ? [["JetStream use", `${usage.streams} streams, ${usage.consumers} consumers, ${(usage.storage_bytes / 1e6).toFixed(1)} MB on disk`]] : []),
    ["Prefix", data.gateway.prefix],
    ["Gateway", `hfbus ${data.gateway.version}`],
  ]);
}

const loop = poller(() => load(), 5000);
$("#token-check").addEventListener("click", () => load(true));

export const start = () => loop.start();
export const stop = () => loop.stop();
