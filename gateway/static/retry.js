// When to send an upload again: a pure function, so that node can test it (tests/gateway/test_page_retry.py).
// The gateway answers 503 with Retry-After when it is full or TorchServe is busy or down, and
// 429 with Retry-After when this browser is over its own limit; a person who dropped ten
// photos expects them to go through a moment later, not ten errors.
"use strict";

const RETRY = {
  maxAttempts: 4, // the first try and three more
  defaultDelayS: 5, // when Retry-After is missing or unreadable
  maxDelayS: 30, // never keep someone waiting on one photo longer than this per try
};

// Seconds to wait before attempt number `attempt + 1` (attempt counts from 1), or null when
// the answer is final: anything but 503 or 429, or no attempts left.
function retryDelaySeconds(status, retryAfter, attempt) {
  if ((status !== 503 && status !== 429) || attempt >= RETRY.maxAttempts) return null;
  const seconds = /^\s*\d+\s*$/.test(retryAfter || "") ? Number(retryAfter) : RETRY.defaultDelayS;
  return Math.min(Math.max(seconds, 1), RETRY.maxDelayS);
}

if (typeof module !== "undefined") module.exports = { RETRY, retryDelaySeconds };
