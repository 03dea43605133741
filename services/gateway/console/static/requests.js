// Live requests: the finished requests the consumers report, newest first, polled every second and a half.
import { api, clock, el, poller, seconds, usd } from "./api.js";

const MAX_ROWS = 200;
let last = 0;
const body = () => document.querySelector("#tail-table tbody");

function row(event) {
  const ok = event.outcome === "ok";
  return el(
    "tr",
    { "data-request-id": event.id },
    el("td", {}, clock(event.at)),
    el("th", { scope: "row" }, el("code", {}, event.id)),
    el("td", {}, event.tag),
    el("td", {}, event.model || "—"),
    el("td", {}, event.provider || "—"),
    el("td", { class: ok ? "ok" : "bad" }, event.outcome),
    el("td", { class: "num" }, seconds(event.ttft_s)),
    el("td", { class: "num" }, seconds(event.duration_s)),
    el("td", { class: "num" }, `${event.prompt_tokens} / ${event.completion_tokens}`),
    el("td", { class: "num" }, usd(event.cost_usd)),
  );
}

async function load() {
  if (document.querySelector("#tail-pause").checked) return;
  const data = await api(`requests?after=${last}`);
  last = data.last;
  const tbody = body();
  if (tbody.querySelector("td[colspan]")) tbody.replaceChildren();
  for (const event of data.events) tbody.prepend(row(event));
  while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(-1);
  if (!tbody.rows.length) tbody.append(el("tr", {}, el("td", { colspan: 10 }, "No request has finished since the gateway started.")));
}

const loop = poller(load, 1500);
export const start = () => loop.start();
export const stop = () => loop.stop();
