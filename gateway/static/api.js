// The gateway's two image calls as the page makes them: a proof of work solved for each try
// (pow.js), the upload with its progress (request.js), and busy (503) or rate-limited (429)
// answers tried again after Retry-After (retry.js decides how long and how often).

import { ApiFailure, failureOf } from "./errors.js";
import { NetworkError, postForm } from "./request.js";

const REMOVE_URL = "/api/v1/remove";
const DETECT_URL = "/api/v1/detect";

// The X-Altcha header with a fresh solution, or none when the server asks for none.
async function proofOfWorkHeaders() {
  if (!window.clearmarkProofOfWork) return {};
  return { "X-Altcha": await window.clearmarkProofOfWork() };
}

function sleep(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

// hooks: onSolving(), onUploadProgress(fraction), onUploaded(), onWaiting(seconds, failure).
// Resolves with the 200 answer {status, header, blob}; rejects with ApiFailure.
async function call(url, parts, hooks) {
  for (let attempt = 1; ; attempt += 1) {
    const form = new FormData();
    for (const [name, blob, filename] of parts) form.append(name, blob, filename);
    hooks.onSolving();
    const headers = await proofOfWorkHeaders();
    let answer;
    try {
      answer = await postForm(url, form, headers, hooks);
    } catch (error) {
      if (error instanceof NetworkError) throw new ApiFailure(0, "");
      throw error;
    }
    if (answer.status === 200) return answer;
    const failure = await failureOf(answer);
    const delay = retryDelaySeconds(answer.status, answer.header("Retry-After"), attempt);
    if (delay === null) throw failure;
    hooks.onWaiting(delay, failure);
    await sleep(delay);
  }
}

// mask: null (the model finds the watermark) or a PNG Blob of the image's size, white where
// the watermark is.
export function removeWatermark(file, mask, hooks) {
  const parts = [["image", file, file.name]];
  if (mask) parts.push(["mask", mask, "mask.png"]);
  return call(REMOVE_URL, parts, hooks);
}

// The model's mask: a greyscale PNG of the image's size, 255 on the watermark, and the
// unsure grey (unsure.js LEVELS) where the model saw something it leaves.
export function detectWatermark(file, hooks) {
  return call(DETECT_URL + "?unsure=true", [["image", file, file.name]], hooks);
}
