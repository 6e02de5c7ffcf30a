// The two levels of a mask from /api/v1/detect?unsure=true (the mask, and what the model saw
// but was not sure enough of to remove), and the unsure region a person picks: pure functions,
// so that node can test them (tests/gateway/test_page_unsure.py).
"use strict";

const LEVELS = {
  watermark: 128, // grey at and above this: the mask (the handler reads a sent mask so)
  unsure: 32, // grey from this up to watermark: unsure (the handler answers 64 there)
};

// A decoded mask's RGBA pixels -> {mask, unsure}: one byte a pixel each, 1 where so.
function maskLevels(rgba) {
  const count = rgba.length / 4;
  const mask = new Uint8Array(count);
  const unsure = new Uint8Array(count);
  for (let i = 0; i < count; i += 1) {
    const grey = rgba[4 * i];
    if (grey >= LEVELS.watermark) mask[i] = 1;
    else if (grey >= LEVELS.unsure) unsure[i] = 1;
  }
  return { mask, unsure };
}

// The unsure pixel nearest (x, y) within reach pixels (a square), as its index, or -1.
function nearestUnsure(unsure, width, height, x, y, reach) {
  const cx = Math.round(x);
  const cy = Math.round(y);
  let best = -1;
  let bestDistance = Infinity;
  for (let row = Math.max(cy - reach, 0); row <= Math.min(cy + reach, height - 1); row += 1) {
    for (let col = Math.max(cx - reach, 0); col <= Math.min(cx + reach, width - 1); col += 1) {
      const distance = (row - cy) ** 2 + (col - cx) ** 2;
      if (unsure[row * width + col] && distance < bestDistance) {
        best = row * width + col;
        bestDistance = distance;
      }
    }
  }
  return best;
}

// The 8-connected unsure region at or nearest (x, y), within reach pixels: {left, top, width,
// height, pixels: one byte a pixel of that box, 1 on the region}, or null where none is near.
// 8-connected as the handler's regions are (a rotated glyph's strokes touch at corners).
function regionAt(unsure, width, height, x, y, reach) {
  const start = nearestUnsure(unsure, width, height, x, y, Math.max(Math.round(reach), 0));
  if (start < 0) return null;
  const taken = new Uint8Array(width * height);
  const members = [start];
  taken[start] = 1;
  let left = width;
  let top = height;
  let right = -1;
  let bottom = -1;
  for (let k = 0; k < members.length; k += 1) {
    const index = members[k];
    const row = Math.floor(index / width);
    const col = index - row * width;
    left = Math.min(left, col);
    right = Math.max(right, col);
    top = Math.min(top, row);
    bottom = Math.max(bottom, row);
    for (let dy = -1; dy <= 1; dy += 1) {
      for (let dx = -1; dx <= 1; dx += 1) {
        const r = row + dy;
        const c = col + dx;
        if (r < 0 || r >= height || c < 0 || c >= width) continue;
        const next = r * width + c;
        if (unsure[next] && !taken[next]) {
          taken[next] = 1;
          members.push(next);
        }
      }
    }
  }
  const box = { left, top, width: right - left + 1, height: bottom - top + 1 };
  const pixels = new Uint8Array(box.width * box.height);
  for (const index of members) {
    const row = Math.floor(index / width);
    pixels[(row - top) * box.width + (index - row * width - left)] = 1;
  }
  return { ...box, pixels };
}

if (typeof module !== "undefined") module.exports = { LEVELS, maskLevels, regionAt };
