// Sign-in, the screens and hash navigation. Each screen module exports { start(), stop() }.
import { api, adminKey, remember } from "./api.js";
import * as status from "./status.js";
import * as consumers from "./consumers.js";
import * as models from "./models.js";
import * as keys from "./keys.js";
import * as requests from "./requests.js";
import * as playground from "./playground.js";

const SCREENS = { status, consumers, models, keys, requests, playground };
let current = null;

const $ = (selector) => document.querySelector(selector);

function show(name) {
  if (!(name in SCREENS)) name = "status";
  if (current && current !== name) SCREENS[current].stop();
  for (const section of document.querySelectorAll("[data-screen]")) section.hidden = section.dataset.screen !== name;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const title = document.querySelector(`[data-screen="${name}"] h2`);
  document.title = `${title ? title.textContent : name} · hfbus console`;
  current = name;
  SCREENS[name].start();
}

function signedIn() {
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#sign-out").hidden = false;
  show(location.hash.slice(1));
}

function signedOut(message = "") {
  if (current) SCREENS[current].stop();
  current = null;
  remember(null);
  $("#app").hidden = true;
  $("#sign-out").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message;
  $("#admin-key").value = "";
  $("#admin-key").focus();
}

async function signIn(key) {
  try {
    await api("session", { method: "POST", key });
  } catch (err) {
    signedOut(err.status === 401 ? "Wrong admin key." : err.message);
    return;
  }
  remember(key);
  signedIn();
}

$("#signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  $("#signin-error").textContent = "";
  signIn($("#admin-key").value.trim());
});
$("#sign-out").addEventListener("click", () => signedOut());
window.addEventListener("hfbus:signed-out", () => signedOut("Signed out: the admin key was refused."));
window.addEventListener("hashchange", () => {
  if (!$("#app").hidden) {
    show(location.hash.slice(1));
    $("#main").focus();
  }
});

if (adminKey()) signIn(adminKey());
else $("#admin-key").focus();
