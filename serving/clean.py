"""Clean photos through a running clearmark from the command line.

    python -m serving.clean photo.jpg [more.png ...] [--url http://127.0.0.1:8000] [--out DIR]

Each photo is sent as its raw bytes to /api/v1/remove, with the proof of work solved when the
gateway asks for one; a 429 or 503 is waited out as its Retry-After says (serving/client.py).
The cleaned image is written as <stem>-clearmark.<ext> in --out (default: beside the photo).
Exits 1 when any photo was not cleaned.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serving.client import post_image

MIME_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def clean(url: str, photo: Path, out: Path) -> Path:
    """The path of the cleaned copy of photo; RuntimeError with the gateway's answer if not."""
    mime = MIME_TYPES.get(photo.suffix.lower())
    if mime is None:
        raise RuntimeError(f"{photo}: not a PNG, JPEG or WebP file name")
    answer = post_image(url, "/api/v1/remove", photo.read_bytes(), mime)
    if answer.status != 200:
        raise RuntimeError(f"{photo}: {answer.status} {answer.body.decode(errors='replace')}")
    cleaned = out / f"{photo.stem}-clearmark.{EXTENSIONS.get(answer.content_type, 'img')}"
    cleaned.write_bytes(answer.body)
    return cleaned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, help="folder for the cleaned copies")
    args = parser.parse_args(argv)
    failures = 0
    for photo in args.photos:
        try:
            print(clean(args.url.rstrip("/"), photo, args.out or photo.parent), flush=True)
        except (RuntimeError, OSError) as exc:
            failures += 1
            print(exc, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
