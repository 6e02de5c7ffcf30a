// Before/after comparison of one photo: the cleaned image over the original, cut at a divider
// a range input moves, and a 100% view that pans by dragging or with the arrow keys (a 12 MP
// photo shrunk to a card hides exactly the detail a person wants to check).

import { element, isPressed, setPressed, toggleButton } from "./dom.js";

const PAN_STEP_PX = 40; // one arrow key press in the 100% view
const PAN_FAST_FACTOR = 5; // with Shift held

const KEY_DIRECTIONS = {
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
};

export function createComparison(originalUrl, name) {
  const root = element("div", "compare");
  const viewport = element("div", "viewport");
  viewport.setAttribute("role", "group");
  viewport.setAttribute("aria-label", "Photo " + name);
  const stage = element("div", "stage");
  const before = element("img", "before");
  before.src = originalUrl;
  before.alt = "Original: " + name;
  const after = element("img", "after");
  after.alt = "Cleaned: " + name;
  after.hidden = true;
  const divider = element("div", "divider");
  divider.setAttribute("aria-hidden", "true");
  divider.hidden = true;
  stage.append(before, after, divider);
  viewport.append(stage);

  // The ends of the slider, for the eye; the slider's own label says the same in words.
  const ends = element("div", "split-ends");
  ends.setAttribute("aria-hidden", "true");
  ends.append(element("span", "", "\u25C0 Original"), element("span", "", "Cleaned \u25B6"));
  const slider = element("input", "split");
  slider.setAttribute("aria-label", "Divider between the original (left) and cleaned (right) " + name);
  slider.type = "range";
  slider.min = "0";
  slider.max = "100";
  slider.value = "50";
  const sliderRow = element("div", "split-row");
  sliderRow.append(slider, ends);
  sliderRow.hidden = true;

  const zoom = toggleButton("100% view", "zoom");
  zoom.title = "Show the photo at full size; drag it or use the arrow keys to pan";
  zoom.disabled = true;

  root.append(viewport, sliderRow);

  // The divider's place as a share of the photo's width. In the 100% view it stays where the
  // slider says within the visible part, so that panning never hides the comparison.
  function updateSplit() {
    const share = Number(slider.value) / 100;
    let position = share;
    if (isPressed(zoom) && stage.offsetWidth > 0) {
      position = (viewport.scrollLeft + viewport.clientWidth * share) / stage.offsetWidth;
    }
    stage.style.setProperty("--split", (position * 100).toFixed(2) + "%");
    slider.setAttribute(
      "aria-valuetext",
      Math.round(share * 100) + "% original, " + Math.round((1 - share) * 100) + "% cleaned"
    );
  }

  function setZoomed(zoomed) {
    setPressed(zoom, zoomed);
    viewport.classList.toggle("zoomed", zoomed);
    root.classList.toggle("zoomed", zoomed);
    if (zoomed) {
      stage.style.width = before.naturalWidth + "px";
      viewport.tabIndex = 0;
      viewport.setAttribute("aria-label", "Photo " + name + " at 100%: arrow keys pan");
      // Start on the middle, where a watermark usually is.
      viewport.scrollLeft = (stage.offsetWidth - viewport.clientWidth) / 2;
      viewport.scrollTop = (stage.offsetHeight - viewport.clientHeight) / 2;
    } else {
      stage.style.removeProperty("width");
      viewport.removeAttribute("tabindex");
      viewport.setAttribute("aria-label", "Photo " + name);
    }
    updateSplit();
  }

  slider.addEventListener("input", updateSplit);
  viewport.addEventListener("scroll", updateSplit);
  zoom.addEventListener("click", () => setZoomed(!isPressed(zoom)));

  viewport.addEventListener("keydown", (event) => {
    const direction = KEY_DIRECTIONS[event.key];
    if (!direction || !isPressed(zoom) || event.target !== viewport) return;
    event.preventDefault();
    const step = PAN_STEP_PX * (event.shiftKey ? PAN_FAST_FACTOR : 1);
    viewport.scrollBy(direction[0] * step, direction[1] * step);
  });

  // Drag to pan the 100% view; the mask editor, while painting, takes the pointer itself.
  let drag = null;
  viewport.addEventListener("pointerdown", (event) => {
    if (!isPressed(zoom) || root.classList.contains("editing")) return;
    drag = { x: event.clientX, y: event.clientY };
    viewport.setPointerCapture(event.pointerId);
    viewport.classList.add("panning");
    event.preventDefault();
  });
  viewport.addEventListener("pointermove", (event) => {
    if (!drag) return;
    viewport.scrollBy(drag.x - event.clientX, drag.y - event.clientY);
    drag = { x: event.clientX, y: event.clientY };
  });
  for (const type of ["pointerup", "pointercancel"]) {
    viewport.addEventListener(type, () => {
      drag = null;
      viewport.classList.remove("panning");
    });
  }

  updateSplit();
  return {
    root,
    stage,
    zoom,
    before,
    // The cleaned image arrived (again): show it over the original.
    showResult(resultUrl) {
      after.src = resultUrl;
      after.hidden = false;
      divider.hidden = false;
      sliderRow.hidden = false;
      zoom.disabled = false;
    },
    setEditing(editing) {
      root.classList.toggle("editing", editing);
    },
  };
}
