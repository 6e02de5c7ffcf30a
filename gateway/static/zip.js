// "Download all": every result in one zip, built in the browser with fflate (npm, served by
// the gateway from node_modules at /vendor/fflate), so the server never holds them together.

import { zipSync } from "/vendor/fflate/browser.js";
import { uniqueNames } from "./names.js";

// PNG, JPEG and WebP are compressed already: stored entries cost no time and no size.
const STORED = 0;

// results: [{name, blob}] -> a Blob of application/zip.
export async function zipResults(results) {
  const names = uniqueNames(results.map((result) => result.name));
  const entries = {};
  for (const [i, result] of results.entries()) {
    entries[names[i]] = [new Uint8Array(await result.blob.arrayBuffer()), { level: STORED }];
  }
  return new Blob([zipSync(entries)], { type: "application/zip" });
}

// Offer blob as a download called name.
export function saveBlob(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // The download has started from the URL by now; give the memory back a moment later.
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}
