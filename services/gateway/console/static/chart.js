// A stacked bar chart in SVG, with a legend and the same numbers as a table for screen readers.
import { el, usd } from "./api.js";

const COLORS = ["#1d5fd1", "#e07b00", "#17863f", "#b3261e", "#7b3fb5", "#00838f", "#8d6e00", "#c2185b", "#455a64"];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

// Axis ticks: cents when that says something, else two significant digits (a chat costs fractions of a cent).
const axis = (value) => (value === 0 ? "$0" : value >= 0.01 ? `$${value.toFixed(2)}` : `$${value.toPrecision(2)}`);

export function stackedBars(labels, series, { title, format = usd } = {}) {
  const width = 900, height = 240, left = 84, bottom = 28, top = 10;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
  const max = Math.max(...totals, 0) || 1;
  const band = (width - left) / labels.length;
  const bar = Math.max(2, band * 0.7);
  const y = (value) => top + (height - top - bottom) * (1 - value / max);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}: total ${format(totals.reduce((a, b) => a + b, 0))}` });
  for (const tick of [0, 0.5, 1]) {
    const value = max * tick;
    chart.append(svg("line", { x1: left, x2: width, y1: y(value), y2: y(value), stroke: "#d5dae1" }));
    chart.append(svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", "font-size": 12, fill: "#55606e" }, axis(value)));
  }
  labels.forEach((label, i) => {
    let base = 0;
    series.forEach((s, n) => {
      const value = s.values[i] || 0;
      if (!value) return;
      const rect = svg("rect", { x: left + i * band + (band - bar) / 2, y: y(base + value), width: bar, height: y(base) - y(base + value), fill: COLORS[n % COLORS.length] });
      rect.append(svg("title", {}, `${label} · ${s.label}: ${format(value)}`));
      chart.append(rect);
      base += value;
    });
    if (labels.length <= 16 || i % Math.ceil(labels.length / 12) === 0) {
      chart.append(svg("text", { x: left + i * band + band / 2, y: height - 8, "text-anchor": "middle", "font-size": 12, fill: "#55606e" }, label.slice(5)));
    }
  });
  const swatch = (n) => {
    const i = el("i", { "aria-hidden": "true" });
    i.style.background = COLORS[n % COLORS.length]; // CSSOM, which the console's CSP allows (style attributes it does not)
    return i;
  };
  const legend = el("ul", { class: "legend" }, series.map((s, n) => el("li", {}, swatch(n), s.label)));
  const table = el(
    "table",
    {},
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Day"), series.map((s) => el("th", { scope: "col", class: "num" }, s.label)))),
    el("tbody", {}, labels.map((label, i) => el("tr", {}, el("th", { scope: "row" }, label), series.map((s) => el("td", { class: "num" }, format(s.values[i] || 0)))))),
  );
  return el("div", { class: "chart" }, chart, legend, el("details", {}, el("summary", {}, "Show as a table"), el("div", { class: "table-wrap" }, table)));
}
