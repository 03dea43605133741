// Consumers: every process found through $SRV.INFO / $SRV.STATS, one row per tag it serves.
import { api, el, fill, poller } from "./api.js";

const body = () => document.querySelector("#consumers-table tbody");

async function load() {
  const { consumers } = await api("consumers");
  const rows = [];
  for (const consumer of consumers) {
    consumer.endpoints.forEach((endpoint, index) => {
      const first = index === 0;
      rows.push(
        el(
          "tr",
          {},
          el(first ? "th" : "td", first ? { scope: "row" } : {}, first ? el("code", {}, consumer.id) : ""),
          el("td", {}, first ? consumer.version : ""),
          el("td", {}, first ? consumer.mode : ""),
          el("td", {}, endpoint.tag),
          el("td", { class: "num" }, endpoint.requests),
          el("td", { class: "num", title: endpoint.last_error || "" }, endpoint.errors),
          el("td", { class: "num" }, `${endpoint.average_ms} ms`),
          el("td", { class: "num" }, endpoint.in_flight),
          el("td", { class: "num" }, first ? consumer.defaults_revision : ""),
        ),
      );
    });
  }
  fill(body(), rows.length ? rows : [el("tr", {}, el("td", { colspan: 9 }, "No consumer answered."))]);
  const count = consumers.length;
  document.querySelector("#consumers-count").textContent = `${count} consumer process${count === 1 ? "" : "es"}`;
}

const loop = poller(load, 2000);
export const start = () => loop.start();
export const stop = () => loop.stop();
