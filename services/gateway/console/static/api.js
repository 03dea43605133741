// The admin API client and the small helpers every screen shares. DOM is built with text nodes only
// (never innerHTML), so a model name or an error message can never become markup.

const STORAGE = "hfbus-admin-key";

export function adminKey() {
  return sessionStorage.getItem(STORAGE);
}

export function remember(key) {
  // sessionStorage: gone with the tab, never sent anywhere but the admin API's Authorization header.
  if (key) sessionStorage.setItem(STORAGE, key);
  else sessionStorage.removeItem(STORAGE);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, { method = "GET", body, key } = {}) {
  const headers = { Authorization: `Bearer ${key ?? adminKey() ?? ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/admin/api/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = data?.error?.message || `${response.status} ${response.statusText}`;
    if (response.status === 401 && key === undefined) window.dispatchEvent(new CustomEvent("hfbus:signed-out"));
    throw new ApiError(response.status, message);
  }
  return data;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function fill(parent, ...children) {
  parent.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

export function definitions(parent, pairs) {
  fill(parent, pairs.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

export const usd = (value) =>
  value === null || value === undefined ? "—" : value < 0.01 && value > 0 ? `$${value.toFixed(6)}` : `$${value.toFixed(2)}`;
export const seconds = (value) =>
  value === null || value === undefined ? "—" : value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
export const when = (unix) => (unix ? new Date(unix * 1000).toLocaleString() : "never");
export const clock = (unix) => new Date(unix * 1000).toLocaleTimeString();

export function ago(unix) {
  if (!unix) return "never";
  const s = Math.max(0, Date.now() / 1000 - unix);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return when(unix);
}

// A screen's refresh loop: runs while the screen is shown, never two at once, stops when hidden.
export function poller(task, everyMs) {
  let timer = null;
  let running = false;
  const tick = async () => {
    if (!running) return;
    try {
      await task();
    } catch (err) {
      console.warn(err);
    }
    if (running) timer = setTimeout(tick, everyMs);
  };
  return {
    start() {
      if (running) return;
      running = true;
      tick();
    },
    stop() {
      running = false;
      clearTimeout(timer);
    },
  };
}
