// A card per photo in the results list: its name, what is happening to it (queued, proof of
// work, upload progress, cleaning, waiting out a busy server, done) and its errors.

import { element, uniqueId } from "./dom.js";
import { explain } from "./errors.js";

const COUNTDOWN_TICK_MS = 1000;

// The card of one photo, placed in list before the card `before` (null: at the end), so that
// a new batch comes first and in the order chosen. limits: {maxMb, maxMegapixels}.
export function createCard(file, list, before, limits) {
  const root = element("li", "card");
  const titleId = uniqueId("card-title");
  root.setAttribute("aria-labelledby", titleId);
  const title = element("h3", "card-title", file.name);
  title.id = titleId;
  const status = element("p", "card-status", "Waiting for its turn\u2026");
  status.setAttribute("role", "status");
  const progress = element("progress", "card-progress");
  progress.max = 1;
  progress.value = 0;
  progress.setAttribute("aria-label", "Progress of " + file.name);
  const error = element("div", "card-error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  const body = element("div", "card-body");
  root.append(title, status, progress, error, body);
  list.insertBefore(root, before);

  let countdown = null;

  function stopCountdown() {
    clearInterval(countdown);
    countdown = null;
  }

  function say(text, fraction) {
    stopCountdown();
    status.textContent = text;
    progress.hidden = false;
    // No value: the browser shows an indeterminate bar (the server is working).
    if (fraction === null) progress.removeAttribute("value");
    else progress.value = fraction;
  }

  const card = {
    root,
    body,

    // Hooks for api.js; verb says what the server is doing ("Cleaning", "Finding the mask").
    hooks(verb) {
      error.hidden = true;
      return {
        onSolving: () => say("Solving the proof of work\u2026", null),
        onUploadProgress: (fraction) => say("Uploading " + Math.round(fraction * 100) + "%", fraction),
        onUploaded: () => say(verb + "\u2026", null),
        onWaiting: (seconds, failure) => card.waiting(seconds, failure),
      };
    },

    // A busy (503) or rate-limited (429) answer: a countdown to the next try.
    waiting(seconds, failure) {
      const { title } = explain(failure, limits);
      let left = seconds;
      say("", null);
      progress.hidden = true; // nothing is moving: the countdown says how long
      const tick = () => {
        status.textContent = title + " \u2014 trying again in " + left + " s";
        left -= 1;
        if (left < 0) stopCountdown();
      };
      tick();
      countdown = setInterval(tick, COUNTDOWN_TICK_MS);
      root.dataset.state = failure.status === 429 ? "rate-limited" : "busy";
    },

    done(text) {
      stopCountdown();
      status.textContent = text;
      progress.hidden = true;
      root.dataset.state = "done";
    },

    // A final failure: title, the server's message and advice, announced (role=alert).
    failed(failure) {
      stopCountdown();
      const { title, detail, advice } = explain(failure, limits);
      status.textContent = "Not done";
      progress.hidden = true;
      const lines = [element("strong", "error-title", title)];
      if (detail) lines.push(element("span", "error-detail", capitalised(detail) + "."));
      if (advice) lines.push(element("span", "error-advice", advice));
      error.replaceChildren(...lines);
      error.hidden = false;
      root.dataset.state = "error";
      root.dataset.status = String(failure.status);
    },
  };
  return card;
}

function capitalised(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
