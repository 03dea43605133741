// Keys and spend: create (the key is shown once), list and revoke; spend per day; traffic per tag, last hour.
import { api, ago, el, fill, poller, usd } from "./api.js";
import { stackedBars } from "./chart.js";

const $ = (selector) => document.querySelector(selector);

function limits(key) {
  const parts = [];
  if (key.rpm) parts.push(`${key.rpm} rpm`);
  if (key.tpm) parts.push(`${key.tpm} tpm`);
  if (key.budget_usd !== null && key.budget_usd !== undefined) parts.push(`budget ${usd(key.budget_usd)}`);
  if (key.models) parts.push(`models: ${key.models.join(", ")}`);
  return parts.join(" · ") || "none";
}

async function revoke(name) {
  if (!confirm(`Revoke the key "${name}"? Requests with it fail from now on.`)) return;
  try {
    await api(`keys/${encodeURIComponent(name)}`, { method: "DELETE" });
    $("#keys-message").textContent = `Revoked ${name}.`;
  } catch (err) {
    $("#keys-message").textContent = `Could not revoke ${name}: ${err.message}`;
  }
  await loadKeys();
}

async function loadKeys() {
  const { keys } = await api("keys");
  fill(
    $("#keys-table tbody"),
    keys.length
      ? keys.map((key) =>
          el(
            "tr",
            {},
            el("th", { scope: "row" }, key.name),
            el("td", { class: key.revoked ? "bad" : "ok" }, key.revoked ? "revoked" : "live"),
            el("td", {}, limits(key)),
            el("td", { class: "num" }, key.requests),
            el("td", { class: "num" }, usd(key.cost_usd)),
            el("td", {}, ago(key.last_used)),
            el("td", {}, key.revoked ? "" : el("button", { type: "button", class: "danger", "aria-label": `Revoke key ${key.name}`, onclick: () => revoke(key.name) }, "Revoke")),
          ),
        )
      : [el("tr", {}, el("td", { colspan: 7 }, "No keys yet."))],
  );
}

async function create(event) {
  event.preventDefault();
  const form = event.target;
  const number = (name) => (form.elements[name].value === "" ? null : Number(form.elements[name].value));
  const models = form.elements.models.value.split(",").map((m) => m.trim()).filter(Boolean);
  const body = { name: form.elements.name.value.trim(), rpm: number("rpm"), tpm: number("tpm"), budget_usd: number("budget_usd"), models: models.length ? models : null };
  const out = $("#new-key");
  try {
    const made = await api("keys", { method: "POST", body });
    fill(
      out,
      el("p", {}, el("strong", {}, `Key "${made.name}" created.`), " Copy it now: it is shown only this once."),
      el("code", { class: "secret", id: "new-key-value", tabindex: "0", "aria-label": `The new key ${made.name}` }, made.key),
    );
    form.reset();
  } catch (err) {
    fill(out, el("p", { class: "error", role: "alert" }, err.message));
  }
  await loadKeys();
}

async function loadSpend() {
  const by = $("#spend-by").value;
  const data = await api(`spend?days=${$("#spend-days").value}`);
  const series = Object.entries(data[by]).map(([id, row]) => ({
    label: by === "keys" ? row.name || id : id,
    values: data.days.map((day) => row.days[day]?.cost_usd || 0),
  }));
  fill($("#spend-chart"), series.length ? stackedBars(data.days, series, { title: `Spend per day by ${by === "keys" ? "key" : "model"}` }) : el("p", { class: "hint" }, "Nothing spent in this period."));
}

function spark(values, kind) {
  const max = Math.max(...values, 1);
  const bars = values.map((v) => {
    const span = el("span", kind === "err" ? { class: "err" } : {});
    span.style.height = `${(v / max) * 100}%`; // CSSOM: allowed by the console's CSP
    return span;
  });
  return el("div", { class: "spark", role: "img", "aria-label": `${values.reduce((a, b) => a + b, 0)} ${kind === "err" ? "errors" : "requests"} in the last hour, per minute` }, bars);
}

async function loadActivity() {
  const data = await api("activity");
  const tags = Object.entries(data.tags);
  if (!tags.length) {
    fill($("#activity"), el("p", { class: "hint" }, "No request finished in the last hour."));
    return;
  }
  const table = el(
    "table",
    {},
    el("caption", { class: "sr-only" }, "Requests and errors per tag over the last hour"),
    el("thead", {}, el("tr", {}, ["Tag", "Requests", "Errors", "Requests per minute", "Errors per minute"].map((h) => el("th", { scope: "col" }, h)))),
    el(
      "tbody",
      {},
      tags.map(([tag, row]) =>
        el("tr", {}, el("th", { scope: "row" }, tag), el("td", { class: "num" }, data.totals[tag].requests), el("td", { class: "num" }, data.totals[tag].errors), el("td", {}, spark(row.requests, "ok")), el("td", {}, spark(row.errors, "err"))),
      ),
    ),
  );
  fill($("#activity"), el("div", { class: "table-wrap" }, table));
}

$("#key-form").addEventListener("submit", create);
$("#spend-by").addEventListener("change", loadSpend);
$("#spend-days").addEventListener("change", loadSpend);

const loop = poller(() => Promise.all([loadKeys(), loadSpend(), loadActivity()]), 5000);
export function start() {
  loop.start();
}
export function stop() {
  loop.stop();
  fill($("#new-key")); // a shown key does not stay on screen once the admin moves on
}
