// What to tell a person about an answer that is not a result: a title per status the API
// gives (README "API"), the server's own message, and what to do about it.

// status 0: no answer at all (offline, the server restarting).
const TITLES = {
  0: "Could not reach the server",
  400: "The upload was not understood",
  403: "The proof of work was refused",
  408: "The upload took too long",
  413: "Too big",
  415: "Unsupported file type",
  422: "Could not clean this image",
  429: "Too many uploads: rate-limited",
  502: "The model failed on this image",
  503: "The server is busy",
  504: "The model took too long",
};

function advice(status, limits) {
  switch (status) {
    case 0:
      return "Check your connection and try again.";
    case 403:
      return "Your browser solves a small puzzle for every upload; reload the page and try again.";
    case 413:
      return (
        "The limit is " + limits.maxMb + " MB and " + limits.maxMegapixels +
        " megapixels per image."
      );
    case 415:
      return "Choose a PNG, JPEG or WebP image.";
    case 429:
      return "Wait a minute before sending more photos.";
    case 503:
    case 504:
      return "Try again in a minute.";
    default:
      return "";
  }
}

// A failed answer as the API sent it: {status, message, reason}, message being the
// {"error": ...} body when there is one.
export class ApiFailure extends Error {
  constructor(status, message, reason) {
    super(message);
    this.status = status;
    this.reason = reason || null;
  }
}

export async function failureOf(answer) {
  let message = "";
  let reason = null;
  try {
    const body = JSON.parse(await answer.blob.text());
    if (body && typeof body.error === "string") message = body.error;
    if (body && typeof body.reason === "string") reason = body.reason;
  } catch (_) {
    // not JSON (a proxy's error page): the title says enough
  }
  return new ApiFailure(answer.status, message, reason);
}

// The file is over the byte cap: said before spending an upload on it.
export function tooBigToSend(file) {
  const mb = (file.size / 2 ** 20).toFixed(1);
  return new ApiFailure(413, "this file is " + mb + " MB");
}

// {title, detail, advice} for a card: the title by status, the server's message as detail.
export function explain(failure, limits) {
  const title = TITLES[failure.status] || "The server answered " + failure.status;
  return { title, detail: failure.message || "", advice: advice(failure.status, limits) };
}
