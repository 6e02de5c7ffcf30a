"""The gateway's API for scripts (make bench, make loadtest, clearmark clean): the proof of
work solved in Python, 429 and 503 waited out as their Retry-After says, multipart forms.

Standard library and the `altcha` package only, so any script can use it.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

import altcha

CHALLENGE_PATH = "/api/v1/challenge"
PROOF_OF_WORK_HEADER = "X-Altcha"
# Answers worth sending again after their Retry-After: this client over its limit, or the
# service busy.
RETRIED_STATUSES = (429, 503)
MAX_RETRY_AFTER_S = 60


def solve(challenge: dict[str, Any]) -> str:
    """The X-Altcha value for a challenge as GET /api/v1/challenge answers it: base64 JSON of
    the challenge and the counter found (256 PBKDF2 derivations on average)."""
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed)
    if solution is None:
        raise RuntimeError("no solution found for the proof-of-work challenge in time")
    return str(altcha.Payload(parsed, solution).to_base64())


def proof_of_work_headers(base_url: str, timeout_s: float = 30) -> dict[str, str]:
    """{"X-Altcha": solution} for one upload, or {} when the gateway has the proof of work
    off (its challenge route answers 404)."""
    try:
        with urllib.request.urlopen(f"{base_url}{CHALLENGE_PATH}", timeout=timeout_s) as answer:
            challenge = json.loads(answer.read())
    except urllib.error.HTTPError as error:
        error.read()
        if error.code == 404:
            return {}
        raise
    return {PROOF_OF_WORK_HEADER: solve(challenge)}


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    headers: Message


def post_image(
    base_url: str,
    path: str,
    body: bytes,
    content_type: str,
    *,
    attempts: int = 5,
    timeout_s: float = 300,
) -> Answer:
    """POST an upload (a raw image/* body, or a prepared multipart body and its content
    type), with a fresh proof of work each try, waiting out 429 and 503 up to attempts
    tries in all. Connection failures raise; HTTP errors come back as an Answer."""
    for attempt in range(1, attempts + 1):
        headers = {"Content-Type": content_type, **proof_of_work_headers(base_url)}
        request = urllib.request.Request(f"{base_url}{path}", data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return Answer(
                    response.status,
                    response.headers.get_content_type(),
                    response.read(),
                    response.headers,
                )
        except urllib.error.HTTPError as error:
            answer = Answer(
                error.code, error.headers.get_content_type(), error.read(), error.headers
            )
        if answer.status not in RETRIED_STATUSES or attempt == attempts:
            return answer
        time.sleep(retry_after_s(answer.headers.get("Retry-After")))
    raise AssertionError("unreachable: the last attempt returns")


def retry_after_s(value: str | None) -> float:
    """Seconds a Retry-After of whole seconds asks for, 1 to MAX_RETRY_AFTER_S (5 when it is
    missing or a date)."""
    if value is None or not value.strip().isdigit():
        return 5.0
    return float(min(max(int(value), 1), MAX_RETRY_AFTER_S))


def multipart_form(files: dict[str, tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body of file fields {name: (filename, content type, bytes)} and
    the Content-Type that carries its boundary."""
    # A random boundary cannot occur in the files by chance; the filename is percent-escaped
    # as browsers and aiohttp do, so a quote in it cannot end the header value.
    boundary = f"clearmark-{secrets.token_hex(16)}"
    body = bytearray()
    for name, (filename, content_type, data) in files.items():
        body += (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; '
            f'filename="{urllib.parse.quote(filename)}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"
