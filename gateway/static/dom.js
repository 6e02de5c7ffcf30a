// Building the page's elements: the small helpers every module uses.

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A button that never submits the upload form it sits near.
export function button(text, className) {
  const node = element("button", className, text);
  node.type = "button";
  return node;
}

// A two-state button (aria-pressed), for the mask, the 100% view and the mask editor.
export function toggleButton(text, className) {
  const node = button(text, className);
  node.setAttribute("aria-pressed", "false");
  return node;
}

export function isPressed(node) {
  return node.getAttribute("aria-pressed") === "true";
}

export function setPressed(node, pressed) {
  node.setAttribute("aria-pressed", String(pressed));
}

// Ids for label/aria links; unique for the page's lifetime.
let lastId = 0;
export function uniqueId(prefix) {
  lastId += 1;
  return prefix + "-" + lastId;
}
