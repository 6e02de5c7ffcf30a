// File names of the results: the server's own (Content-Disposition), and unique names in a zip.

const EXTENSIONS = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" };

// "<stem>-clearmark.<ext>", as the gateway names it (gateway/upload.py), when the
// Content-Disposition header is missing or unreadable.
function fallbackName(originalName, contentType) {
  const stem = originalName.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9._-]+/g, "_") || "image";
  return stem + "-clearmark." + (EXTENSIONS[contentType] || "img");
}

export function downloadName(contentDisposition, contentType, originalName) {
  const match = /filename="([^"]+)"/.exec(contentDisposition || "");
  return match ? match[1] : fallbackName(originalName, contentType);
}

// Two photos called IMG_0001.jpg from two folders must not overwrite each other in the zip:
// the second becomes "IMG_0001-clearmark (2).jpg".
export function uniqueNames(names) {
  const seen = new Map();
  return names.map((name) => {
    const count = (seen.get(name) || 0) + 1;
    seen.set(name, count);
    if (count === 1) return name;
    const dot = name.lastIndexOf(".");
    return dot > 0
      ? name.slice(0, dot) + " (" + count + ")" + name.slice(dot)
      : name + " (" + count + ")";
  });
}
