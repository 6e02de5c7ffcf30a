// What a card holds for one photo: the comparison, the mask overlay and its editor, "clean
// again" with the corrected mask, and the download link; each action's progress and errors go
// to the card.

import { detectWatermark, removeWatermark } from "./api.js";
import { createComparison } from "./compare.js";
import { button, element, isPressed, setPressed, toggleButton } from "./dom.js";
import { ApiFailure } from "./errors.js";
import { createMaskEditor } from "./maskeditor.js";
import { downloadName } from "./names.js";

// onResult({name, blob}) each time a cleaned image arrives (first time and after clean again).
export function createPhoto(card, file, onResult) {
  const comparison = createComparison(URL.createObjectURL(file), file.name);
  // A file the browser cannot show (an unsupported type): the card's message says why.
  comparison.before.addEventListener("error", () => {
    comparison.root.hidden = true;
  });
  const actions = element("div", "actions");
  actions.hidden = true;
  const download = element("a", "download");
  const showMask = toggleButton("Show mask", "show-mask");
  const editMask = toggleButton("Correct mask", "edit-mask");
  actions.append(download, showMask, editMask, comparison.zoom);
  const cleanAgain = button("Clean again", "clean-again");
  card.body.append(comparison.root, actions);

  let resultUrl = null;
  let editor = null; // made on first use, once the photo's full size is known

  // API failures go to the card; anything else is a bug and stays loud.
  async function reporting(action) {
    try {
      return await action();
    } catch (failure) {
      if (!(failure instanceof ApiFailure)) throw failure;
      card.failed(failure);
      return null;
    }
  }

  async function clean(mask) {
    const answer = await reporting(() => removeWatermark(file, mask, card.hooks("Cleaning")));
    if (answer === null) return;
    const name = downloadName(
      answer.header("Content-Disposition"),
      answer.header("Content-Type"),
      file.name
    );
    if (resultUrl) URL.revokeObjectURL(resultUrl);
    resultUrl = URL.createObjectURL(answer.blob);
    comparison.showResult(resultUrl);
    download.href = resultUrl;
    download.download = name;
    download.textContent = "Download " + name;
    actions.hidden = false;
    card.done(mask ? "Cleaned again with your mask" : "Cleaned");
    onResult({ name, blob: answer.blob });
  }

  // The editor with the model's mask in it, or null when the mask could not be had.
  async function maskEditor() {
    if (!editor) {
      await comparison.before.decode();
      const { naturalWidth, naturalHeight } = comparison.before;
      editor = createMaskEditor(comparison.stage, naturalWidth, naturalHeight, file.name);
      editor.tools.append(cleanAgain);
      actions.after(editor.tools);
    }
    if (!editor.loaded) {
      const answer = await reporting(() =>
        detectWatermark(file, card.hooks("Finding the watermark"))
      );
      if (answer === null) return null;
      await editor.load(answer.blob);
      card.done(
        editor.hasUnsure
          ? "Mask shown: what clearmark found, and in amber what it saw but left"
          : "Mask shown: what clearmark found"
      );
    }
    return editor;
  }

  function setMaskShown(shown) {
    setPressed(showMask, shown);
    editor.show(shown);
    if (!shown) setEditing(false);
  }

  function setEditing(on) {
    setPressed(editMask, on);
    editor.setEditing(on);
    comparison.setEditing(on);
  }

  showMask.addEventListener("click", async () => {
    if (isPressed(showMask)) {
      setMaskShown(false);
      return;
    }
    showMask.disabled = true;
    if (await maskEditor()) setMaskShown(true);
    showMask.disabled = false;
  });

  editMask.addEventListener("click", async () => {
    if (isPressed(editMask)) {
      setEditing(false);
      return;
    }
    editMask.disabled = true;
    if (await maskEditor()) {
      setMaskShown(true);
      setEditing(true);
    }
    editMask.disabled = false;
  });

  cleanAgain.addEventListener("click", async () => {
    cleanAgain.disabled = true;
    await clean(await editor.toPng());
    cleanAgain.disabled = false;
  });

  return { clean: () => clean(null) };
}
