// Upload page enhancement: drag-and-drop, several files at once, results shown side by side.
// Without this script the form still posts one image and the browser shows the result.
"use strict";

(function () {
  const MAX_PARALLEL = 2; // keep the model server's queue short for everyone
  const form = document.getElementById("upload-form");
  const input = document.getElementById("image-input");
  const dropZone = document.getElementById("drop-zone");
  const results = document.getElementById("results");
  const maxBytes = Number(form.dataset.maxUploadBytes);
  const maxMb = form.dataset.maxUploadMb;
  const queue = [];
  let running = 0;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  // "<stem>-clearmark.<ext>", used when the server's Content-Disposition is unreadable.
  function fallbackName(file, contentType) {
    const stem = file.name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9._-]+/g, "_") || "image";
    const ext = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" }[contentType] || "img";
    return stem + "-clearmark." + ext;
  }

  function downloadName(response, file) {
    const header = response.headers.get("Content-Disposition") || "";
    const match = /filename="([^"]+)"/.exec(header);
    return match ? match[1] : fallbackName(file, response.headers.get("Content-Type"));
  }

  function makeCard(file) {
    const card = element("li", "card");
    card.append(element("h3", "card-title", file.name));
    const panes = element("div", "panes");

    const original = element("figure", "pane");
    const originalImg = element("img");
    originalImg.src = URL.createObjectURL(file);
    originalImg.alt = "Original: " + file.name;
    original.append(originalImg, element("figcaption", "", "Original"));

    const result = element("figure", "pane result");
    const status = element("div", "status");
    status.setAttribute("role", "status");
    status.append(element("span", "spinner"), element("span", "", "Removing watermark\u2026"));
    result.append(status, element("figcaption", "", "Cleaned"));

    panes.append(original, result);
    card.append(panes);
    results.prepend(card);
    return { card, result, status };
  }

  function showError(view, message) {
    view.status.replaceChildren(element("p", "error", message));
    view.status.setAttribute("role", "alert");
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && typeof body.error === "string") return body.error;
    } catch (_) {
      // not JSON: fall through to the status line
    }
    return "The server answered " + response.status + " " + response.statusText;
  }

  function showWaiting(view, seconds) {
    view.status.replaceChildren(
      element("span", "spinner"),
      element("span", "", "The server is busy: trying again in " + seconds + " s\u2026")
    );
  }

  // A fresh proof-of-work solution for each try (pow.js), or none when the server asks none.
  async function uploadHeaders() {
    if (!window.clearmarkProofOfWork) return {};
    return { "X-Altcha": await window.clearmarkProofOfWork() };
  }

  // One upload, sent again after Retry-After while the server answers 503 or 429 (retry.js
  // says when).
  async function send(file, view) {
    for (let attempt = 1; ; attempt += 1) {
      const body = new FormData();
      body.append("image", file, file.name);
      const headers = await uploadHeaders();
      const response = await fetch(form.action, { method: "POST", body, headers });
      const delay = retryDelaySeconds(response.status, response.headers.get("Retry-After"), attempt);
      if (delay === null) return response;
      showWaiting(view, delay);
      await new Promise((resolve) => setTimeout(resolve, delay * 1000));
    }
  }

  async function clean(file, view) {
    let response;
    try {
      response = await send(file, view);
    } catch (_) {
      showError(view, "Could not reach the server. Check your connection and try again.");
      return;
    }
    if (!response.ok) {
      showError(view, await errorMessage(response));
      return;
    }
    const name = downloadName(response, file);
    const url = URL.createObjectURL(await response.blob());
    const img = element("img");
    img.src = url;
    img.alt = "Cleaned: " + file.name;
    const link = element("a", "download", "Download " + name);
    link.href = url;
    link.download = name;
    view.status.replaceWith(img);
    view.card.append(link);
  }

  function pump() {
    while (running < MAX_PARALLEL && queue.length > 0) {
      const job = queue.shift();
      running += 1;
      clean(job.file, job.view).finally(() => {
        running -= 1;
        pump();
      });
    }
  }

  function enqueue(files) {
    for (const file of files) {
      const view = makeCard(file);
      if (file.size > maxBytes) {
        showError(view, "This file is larger than the " + maxMb + " MB limit.");
        continue;
      }
      queue.push({ file, view });
    }
    pump();
  }

  input.addEventListener("change", () => {
    enqueue(Array.from(input.files));
    input.value = ""; // choosing the same file again should clean it again
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    enqueue(Array.from(input.files));
    input.value = "";
  });

  dropZone.querySelector(".drop-hint").hidden = false;
  for (const type of ["dragenter", "dragover"]) {
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    dropZone.addEventListener(type, () => dropZone.classList.remove("dragging"));
  }
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    enqueue(Array.from(event.dataTransfer.files));
  });
})();
