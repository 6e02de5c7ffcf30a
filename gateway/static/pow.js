// The proof of work each upload needs (gateway/proof_of_work.py), solved by the ALTCHA widget
// in the form. Every solution buys one upload, so the widget is reset and solves again as soon
// as its payload is taken; app.js awaits window.clearmarkProofOfWork() before each upload.
import "/vendor/altcha/external/altcha.js";

const WORKER = "/vendor/altcha/workers/pbkdf2.js";
// The strict CSP build ships no worker of its own: register the one the gateway serves.
for (const algorithm of ["PBKDF2/SHA-256", "PBKDF2/SHA-384", "PBKDF2/SHA-512"]) {
  globalThis.$altcha.algorithms.set(algorithm, () => new Worker(WORKER));
}

const widget = document.querySelector("altcha-widget");
const waiting = []; // resolvers of uploads waiting for a solution, oldest first
let solved = null; // a payload not yet spent

function solveNext() {
  if (widget.getState() !== "verifying") {
    widget.reset();
    widget.verify();
  }
}

// A solution goes to the oldest waiting upload, and then the widget solves the next one;
// with nobody waiting it is kept in reserve, and the widget rests until it is taken.
function take(payload) {
  const next = waiting.shift();
  if (next) {
    next(payload);
    solveNext();
  } else {
    solved = payload;
  }
}

window.clearmarkProofOfWork = function () {
  if (solved !== null) {
    const payload = solved;
    solved = null;
    solveNext();
    return Promise.resolve(payload);
  }
  return new Promise((resolve) => {
    waiting.push(resolve);
    solveNext();
  });
};

widget.addEventListener("verified", (event) => take(event.detail.payload));
widget.addEventListener("expired", () => {
  solved = null;
  solveNext();
});
// A challenge that could not be fetched or solved (network down, server restarting): try
// again shortly rather than leave the waiting uploads spinning.
const RETRY_AFTER_ERROR_MS = 3000;
widget.addEventListener("statechange", (event) => {
  if (event.detail.state === "error") setTimeout(solveNext, RETRY_AFTER_ERROR_MS);
});
customElements.whenDefined("altcha-widget").then(solveNext);
