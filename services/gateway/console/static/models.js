// Models and strategy: the live per-tag defaults (NATS KV), a Hub provider-mapping lookup, the catalog.
import { api, el, fill, poller, usd } from "./api.js";

const $ = (selector) => document.querySelector(selector);
let catalog = null;
const revisions = {}; // tag -> the bucket revision its defaults were last saved at

function priceText(prices) {
  const parts = Object.entries(prices).map(([unit, value]) => `${unit.replaceAll("_", " ")}: ${value === null ? "unknown" : usd(value)}`);
  return parts.join(", ") || "—";
}

function strategySelect(row, data) {
  const options = [el("option", { value: "" }, "catalog default")];
  options.push(el("option", { value: "auto" }, "auto (no suffix)"));
  if (row.policies) for (const policy of data.policies) options.push(el("option", { value: policy }, `:${policy}`));
  const providers = new Set(data.providers);
  if (row.strategy && !["auto", ...data.policies].includes(row.strategy)) providers.add(row.strategy);
  const group = el("optgroup", { label: "Pin a provider" }, [...providers].sort().map((p) => el("option", { value: p }, `:${p}`)));
  const select = el("select", { id: `strategy-${row.tag}`, "aria-label": `Strategy for ${row.tag}` }, options, group);
  select.value = row.strategy || "";
  return select;
}

function modelSelect(row, data) {
  const models = data.models.filter((m) => m.tag === row.tag);
  const select = el(
    "select",
    { id: `model-${row.tag}`, "aria-label": `Default model for ${row.tag}` },
    el("option", { value: "" }, `catalog default (${row.catalog_default || "none"})`),
    models.map((m) => el("option", { value: m.name }, `${m.display_name} (${m.name})`)),
  );
  if (row.model && !models.some((m) => m.name === row.model)) select.append(el("option", { value: row.model }, row.model));
  select.value = row.model || "";
  return select;
}

async function save(tag) {
  const message = $("#defaults-message");
  const body = { strategy: $(`#strategy-${tag}`).value || null, model: $(`#model-${tag}`).value || null };
  try {
    const saved = await api(`defaults/${tag}`, { method: "PUT", body });
    revisions[tag] = saved.revision;
    message.textContent = `Saved ${tag} defaults (revision ${saved.revision}); waiting for the consumers to apply them.`;
    await applied();
  } catch (err) {
    message.textContent = `Could not save ${tag} defaults: ${err.message}`;
  }
}

async function applied() {
  const { consumers } = await api("consumers");
  for (const [tag, revision] of Object.entries(revisions)) {
    const cell = document.getElementById(`applied-${tag}`);
    if (!cell) continue;
    const serving = consumers.filter((c) => c.tags.includes(tag));
    const done = serving.filter((c) => c.defaults_revision >= revision).length;
    cell.textContent = serving.length ? `${done} of ${serving.length} consumers` : "no consumer serves it";
    cell.className = serving.length && done === serving.length ? "ok" : "warn";
  }
}

async function load() {
  const data = await api("models");
  catalog = data;
  const rows = data.tags.map((row) => {
    if (row.revision) revisions[row.tag] = row.revision;
    return el(
      "tr",
      {},
      el("th", { scope: "row" }, row.tag),
      el("td", {}, strategySelect(row, data)),
      el("td", {}, modelSelect(row, data)),
      el("td", {}, el("button", { type: "button", class: "quiet", "aria-label": `Save ${row.tag} defaults`, onclick: () => save(row.tag) }, "Save")),
      el("td", { id: `applied-${row.tag}` }, row.revision ? "…" : "catalog defaults"),
    );
  });
  fill($("#defaults-table tbody"), rows);
  fill(
    $("#catalog-table tbody"),
    data.models.map((m) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, m.display_name, m.default ? el("span", { class: "hint" }, " (default)") : null),
        el("td", {}, m.tag),
        el("td", {}, el("code", {}, m.hf_model)),
        el("td", {}, m.provider ? `:${m.provider}` : m.policy || "auto"),
        el("td", {}, priceText(m.prices)),
      ),
    ),
  );
  await applied();
}

async function lookup(event) {
  event.preventDefault();
  const id = $("#lookup-id").value.trim();
  const out = $("#lookup-result");
  fill(out, el("p", { role: "status" }, `Looking up ${id}…`));
  try {
    const found = await api(`models/lookup?id=${encodeURIComponent(id)}`);
    const table = el(
      "table",
      {},
      el("caption", { class: "sr-only" }, `Hub provider mapping of ${found.id}`),
      el("thead", {}, el("tr", {}, ["Provider", "Provider's id", "Task", "Status", "hfbus adapter"].map((h) => el("th", { scope: "col" }, h)))),
      el(
        "tbody",
        {},
        found.providers.map((p) =>
          el(
            "tr",
            {},
            el("th", { scope: "row" }, p.provider),
            el("td", {}, el("code", {}, p.provider_model)),
            el("td", {}, p.task),
            el("td", { class: p.status === "live" ? "ok" : "warn" }, p.status),
            el("td", {}, p.adapter ? "yes" : "router only"),
          ),
        ),
      ),
    );
    const price = found.catalog.length
      ? found.catalog.map((m) => `${m.name} (${m.tag}): ${priceText(m.prices)}`).join("; ")
      : "not in the catalog: hfbus reports no cost for it";
    fill(out, el("h4", {}, found.id), el("div", { class: "table-wrap" }, table), el("p", {}, el("strong", {}, "Price: "), price));
  } catch (err) {
    fill(out, el("p", { class: "error", role: "alert" }, err.message));
  }
}

$("#lookup-form").addEventListener("submit", lookup);
const loop = poller(applied, 2000);

export function start() {
  load().catch((err) => ($("#defaults-message").textContent = err.message));
  loop.start();
}
export const stop = () => loop.stop();
export const current = () => catalog;
