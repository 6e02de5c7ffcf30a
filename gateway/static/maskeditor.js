// The watermark mask of one photo on a canvas over it, at the photo's full size: shown as a
// tint, corrected with a brush (adds) and an eraser (removes) of a chosen size, with undo, and
// given back as the PNG the API's `mask` part takes (white = watermark, black = keep). What
// the model saw but left (detect's unsure regions) shows in a tint of its own underneath; a
// person adds one region with a click of the pick tool, or all of them at once.
// maskLevels and regionAt are unsure.js's (a classic script, so that node can test them).

import { button, element, uniqueId } from "./dom.js";

const TINT = "rgb(255, 0, 90)"; // how the mask is drawn; the overlay's opacity is in style.css
const TINT_RGB = [255, 0, 90];
const UNSURE_RGB = [255, 176, 0]; // the unsure regions' tint
const SIZES = { min: 4, max: 160, initial: 32 }; // brush diameter in screen pixels
const KEY_MOVES = {
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
};

// A canvas of width x height image pixels laid over stage, and the tools that edit it.
export function createMaskEditor(stage, width, height, name) {
  const canvas = element("canvas", "mask");
  canvas.width = width;
  canvas.height = height;
  canvas.hidden = true;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "Watermark mask of " + name);
  const context = canvas.getContext("2d");
  // What the model found; strokes are replayed over it, which is what makes undo cheap.
  const detected = document.createElement("canvas");
  detected.width = width;
  detected.height = height;
  // What it saw and left: shown under the mask (less what the mask covers now).
  const unsureShown = element("canvas", "unsure-regions");
  unsureShown.width = width;
  unsureShown.height = height;
  unsureShown.hidden = true;
  unsureShown.setAttribute("aria-hidden", "true");
  let unsurePixels = null; // one byte a pixel, 1 where unsure; null until loaded
  let unsureShade = null; // the unsure pixels in UNSURE_RGB
  // The unsure pixels in the mask's tint, which "Add all" draws into the mask: made the first
  // time it is used (each full-size canvas of a 16-megapixel photo is 64 MB).
  let unsureTint = null;
  const cursor = element("div", "brush-cursor");
  cursor.setAttribute("aria-hidden", "true");
  cursor.hidden = true;
  stage.append(unsureShown, canvas, cursor);

  // {erase, radius (image px), points: [[x, y], ...]}, or {region: {left, top, canvas}} (a
  // picked unsure region), or {all: true} (every unsure region)
  const strokes = [];
  let editing = false;
  let live = null; // the stroke under the pointer
  const at = [width / 2, height / 2]; // the keyboard brush, in image pixels

  const tools = element("fieldset", "mask-tools");
  tools.hidden = true;
  tools.append(element("legend", "", "Correct the mask"));
  const toolName = uniqueId("tool");
  const radios = {};
  for (const [value, text] of [
    ["brush", "Brush: add to the mask"],
    ["eraser", "Eraser: remove from it"],
    ["pick", "Pick: add a part it was unsure of"],
  ]) {
    const label = element("label", "tool");
    const radio = element("input");
    radio.type = "radio";
    radio.name = toolName;
    radio.value = value;
    radio.checked = value === "brush";
    radios[value] = radio;
    label.append(radio, document.createTextNode(" " + text));
    tools.append(label);
  }
  const pickLabel = radios.pick.parentElement;
  pickLabel.hidden = true;
  const addAll = button("Add all it was unsure of", "add-unsure");
  addAll.hidden = true;
  const sizeLabel = element("label", "size");
  const size = element("input");
  size.type = "range";
  size.min = String(SIZES.min);
  size.max = String(SIZES.max);
  size.value = String(SIZES.initial);
  const sizeShown = element("output", "", SIZES.initial + " px");
  sizeLabel.append(document.createTextNode("Size "), size, sizeShown);
  const undo = button("Undo", "undo");
  undo.disabled = true;
  tools.append(addAll, sizeLabel, undo);
  const unsureHint = element(
    "p",
    "keys-hint unsure-hint",
    "Amber: what clearmark saw but was not sure was a watermark. It stays in the photo " +
      "unless you add it to the mask."
  );
  unsureHint.hidden = true;
  tools.append(unsureHint);
  const keysHint = element(
    "p",
    "keys-hint",
    "On the photo: drag to paint (click to pick). With the keyboard: arrows move the " +
      "brush, Shift+arrows paint as they move, Space paints a dot (or picks), Ctrl+Z undoes."
  );
  keysHint.id = uniqueId("mask-keys");
  tools.append(keysHint);

  // Screen pixels to image pixels, as the canvas is shown now (fit or 100%).
  function imagePixelsPerScreenPixel() {
    const shown = canvas.getBoundingClientRect().width;
    return shown > 0 ? width / shown : 1;
  }

  function radiusNow() {
    return (Number(size.value) / 2) * imagePixelsPerScreenPixel();
  }

  function paintSegment(stroke, from, to) {
    context.globalCompositeOperation = stroke.erase ? "destination-out" : "source-over";
    context.strokeStyle = TINT;
    context.fillStyle = TINT;
    context.lineWidth = stroke.radius * 2;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    if (from === to) {
      context.arc(to[0], to[1], stroke.radius, 0, 2 * Math.PI);
      context.fill();
    } else {
      context.moveTo(from[0], from[1]);
      context.lineTo(to[0], to[1]);
      context.stroke();
    }
    context.globalCompositeOperation = "source-over";
  }

  function paintStroke(stroke) {
    if (stroke.all) {
      context.drawImage(tintOfAll(), 0, 0);
    } else if (stroke.region) {
      context.drawImage(stroke.region.canvas, stroke.region.left, stroke.region.top);
    } else {
      stroke.points.forEach((point, i) => paintSegment(stroke, stroke.points[Math.max(i - 1, 0)], point));
    }
  }

  function tintOfAll() {
    if (!unsureTint) {
      unsureTint = document.createElement("canvas");
      unsureTint.width = width;
      unsureTint.height = height;
      const tintContext = unsureTint.getContext("2d");
      const pixels = tintContext.createImageData(width, height);
      tintPixels(pixels.data, unsurePixels, TINT_RGB);
      tintContext.putImageData(pixels, 0, 0);
    }
    return unsureTint;
  }

  // The unsure tint where the mask does not cover it now.
  function showUnsure() {
    if (!unsureShade) return;
    const shown = unsureShown.getContext("2d");
    shown.globalCompositeOperation = "source-over";
    shown.clearRect(0, 0, width, height);
    shown.drawImage(unsureShade, 0, 0);
    shown.globalCompositeOperation = "destination-out";
    shown.drawImage(canvas, 0, 0);
    shown.globalCompositeOperation = "source-over";
  }

  function redraw() {
    context.clearRect(0, 0, width, height);
    context.drawImage(detected, 0, 0);
    strokes.forEach(paintStroke);
    showUnsure();
  }

  function commit(stroke) {
    strokes.push(stroke);
    undo.disabled = false;
    showUnsure();
  }

  // The unsure region at or near point (within the brush's reach) as a stroke, or null.
  function pickAt(point) {
    if (!unsurePixels) return null;
    const found = regionAt(unsurePixels, width, height, point[0], point[1], radiusNow());
    if (!found) return null;
    const piece = document.createElement("canvas");
    piece.width = found.width;
    piece.height = found.height;
    const pieceContext = piece.getContext("2d");
    const pixels = pieceContext.createImageData(found.width, found.height);
    tintPixels(pixels.data, found.pixels, TINT_RGB);
    pieceContext.putImageData(pixels, 0, 0);
    const stroke = { region: { left: found.left, top: found.top, canvas: piece } };
    paintStroke(stroke);
    return stroke;
  }

  function startStroke(point) {
    const stroke = { erase: radios.eraser.checked, radius: radiusNow(), points: [point] };
    paintSegment(stroke, point, point);
    return stroke;
  }

  function extendStroke(stroke, point) {
    paintSegment(stroke, stroke.points[stroke.points.length - 1], point);
    stroke.points.push(point);
  }

  function pointAt(event) {
    const box = canvas.getBoundingClientRect();
    const scale = width / box.width;
    return [(event.clientX - box.left) * scale, (event.clientY - box.top) * scale];
  }

  function showCursor(point) {
    at[0] = Math.min(Math.max(point[0], 0), width);
    at[1] = Math.min(Math.max(point[1], 0), height);
    cursor.hidden = !editing;
    cursor.style.left = (at[0] / width) * 100 + "%";
    cursor.style.top = (at[1] / height) * 100 + "%";
    cursor.style.width = size.value + "px";
    cursor.style.height = size.value + "px";
    cursor.classList.toggle("erasing", radios.eraser.checked);
    cursor.classList.toggle("picking", radios.pick.checked);
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!editing) return;
    event.preventDefault();
    if (radios.pick.checked) {
      const picked = pickAt(pointAt(event));
      if (picked) commit(picked);
      return;
    }
    canvas.setPointerCapture(event.pointerId);
    live = startStroke(pointAt(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!editing) return;
    const point = pointAt(event);
    showCursor(point);
    if (live) extendStroke(live, point);
  });
  for (const type of ["pointerup", "pointercancel"]) {
    canvas.addEventListener(type, () => {
      if (live) commit(live);
      live = null;
    });
  }

  canvas.addEventListener("keydown", (event) => {
    if (!editing) return;
    const move = KEY_MOVES[event.key];
    if (move) {
      event.preventDefault();
      const step = Math.max(radiusNow(), 1);
      const from = [at[0], at[1]];
      showCursor([at[0] + move[0] * step, at[1] + move[1] * step]);
      if (event.shiftKey && !radios.pick.checked) {
        const stroke = startStroke(from);
        extendStroke(stroke, [at[0], at[1]]);
        commit(stroke);
      }
    } else if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      if (radios.pick.checked) {
        const picked = pickAt([at[0], at[1]]);
        if (picked) commit(picked);
      } else {
        commit(startStroke([at[0], at[1]]));
      }
    } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undoLast();
    }
  });
  canvas.addEventListener("focus", () => showCursor(at));
  canvas.addEventListener("pointerleave", () => {
    if (document.activeElement !== canvas) cursor.hidden = true;
  });

  function undoLast() {
    strokes.pop();
    undo.disabled = strokes.length === 0;
    redraw();
  }

  undo.addEventListener("click", undoLast);
  addAll.addEventListener("click", () => {
    const stroke = { all: true };
    paintStroke(stroke);
    commit(stroke);
  });
  size.addEventListener("input", () => {
    sizeShown.textContent = size.value + " px";
    showCursor(at);
  });

  return {
    canvas,
    tools,
    loaded: false,
    // Whether the model's mask came with unsure regions (shown in amber).
    get hasUnsure() {
      return unsurePixels !== null;
    },

    // The model's mask, a greyscale PNG Blob: grey >= 128 becomes the tint, the unsure grey
    // (unsure.js) the unsure tint underneath, the rest clear.
    async load(maskBlob) {
      const bitmap = await createImageBitmap(maskBlob);
      const scratch = document.createElement("canvas");
      scratch.width = width;
      scratch.height = height;
      const scratchContext = scratch.getContext("2d");
      scratchContext.drawImage(bitmap, 0, 0, width, height);
      bitmap.close();
      const pixels = scratchContext.getImageData(0, 0, width, height);
      const { mask, unsure } = maskLevels(pixels.data);
      tintPixels(pixels.data, mask, TINT_RGB);
      detected.getContext("2d").putImageData(pixels, 0, 0);
      if (unsure.some((value) => value === 1)) {
        unsurePixels = unsure;
        tintPixels(pixels.data, unsure, UNSURE_RGB);
        unsureShade = document.createElement("canvas");
        unsureShade.width = width;
        unsureShade.height = height;
        unsureShade.getContext("2d").putImageData(pixels, 0, 0);
        pickLabel.hidden = false;
        addAll.hidden = false;
        unsureHint.hidden = false;
      }
      this.loaded = true;
      redraw();
    },

    show(shown) {
      canvas.hidden = !shown;
      unsureShown.hidden = !shown || !unsureShade;
    },

    setEditing(on) {
      editing = on;
      tools.hidden = !on;
      canvas.classList.toggle("editing", on);
      // While editing the canvas is a widget of its own that takes the keys it handles.
      canvas.setAttribute("role", on ? "application" : "img");
      if (on) {
        canvas.tabIndex = 0;
        canvas.setAttribute("aria-describedby", keysHint.id);
      } else {
        canvas.removeAttribute("tabindex");
        canvas.removeAttribute("aria-describedby");
      }
      cursor.hidden = true;
    },

    // The mask as the API takes it: a PNG of the photo's full size, white where to remove.
    toPng() {
      const out = document.createElement("canvas");
      out.width = width;
      out.height = height;
      const outContext = out.getContext("2d");
      outContext.fillStyle = "#000";
      outContext.fillRect(0, 0, width, height);
      const white = document.createElement("canvas");
      white.width = width;
      white.height = height;
      const whiteContext = white.getContext("2d");
      whiteContext.drawImage(canvas, 0, 0);
      whiteContext.globalCompositeOperation = "source-in";
      whiteContext.fillStyle = "#fff";
      whiteContext.fillRect(0, 0, width, height);
      outContext.drawImage(white, 0, 0);
      return new Promise((resolve) => out.toBlob(resolve, "image/png"));
    },
  };
}

// RGBA data (4 bytes a pixel) set to rgb, opaque where where[i] is 1, clear elsewhere.
function tintPixels(data, where, rgb) {
  for (let i = 0; i < where.length; i += 1) {
    data[4 * i] = rgb[0];
    data[4 * i + 1] = rgb[1];
    data[4 * i + 2] = rgb[2];
    data[4 * i + 3] = where[i] ? 255 : 0;
  }
}
