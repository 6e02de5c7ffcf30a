// The upload page: photos chosen or dropped become cards, cleaned a few at a time; "download
// all" zips every result. Without JavaScript the form still posts one image and the browser
// shows the result.

import { createCard } from "./cards.js";
import { tooBigToSend } from "./errors.js";
import { createPhoto } from "./photo.js";
import { createQueue } from "./queue.js";
import { saveBlob, zipResults } from "./zip.js";

const MAX_PARALLEL = 2; // keep the model server's queue short for everyone
const ZIP_NAME = "clearmark-results.zip";

const form = document.getElementById("upload-form");
const input = document.getElementById("image-input");
const dropZone = document.getElementById("drop-zone");
const list = document.getElementById("results");
const downloadAll = document.getElementById("download-all");
const limits = {
  maxBytes: Number(form.dataset.maxUploadBytes),
  maxMb: form.dataset.maxUploadMb,
  maxMegapixels: form.dataset.maxMegapixels,
};
const queue = createQueue(MAX_PARALLEL);
const results = new Map(); // card -> its latest {name, blob}

function showDownloadAll() {
  downloadAll.hidden = results.size === 0;
  downloadAll.textContent = "Download all (" + results.size + ") as .zip";
}

function enqueue(files) {
  const newest = list.firstElementChild;
  for (const file of files) {
    const card = createCard(file, list, newest, limits);
    const photo = createPhoto(card, file, (result) => {
      results.set(card, result);
      showDownloadAll();
    });
    if (file.size > limits.maxBytes) card.failed(tooBigToSend(file));
    else queue.add(photo.clean);
  }
}

downloadAll.addEventListener("click", async () => {
  downloadAll.disabled = true;
  saveBlob(await zipResults([...results.values()]), ZIP_NAME);
  downloadAll.disabled = false;
});

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
