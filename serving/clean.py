"""Clean photos and folders of photos through a running clearmark gateway.

    clearmark clean PATH... [--out DIR] [--url URL] [--jobs N] [--overwrite] [--mask-dir DIR]
    python -m serving.clean PATH...        (the same command)

Folders are walked recursively. Each photo goes to POST /api/v1/remove (serving/client.py
solves the proof of work and waits out 429 and 503 as their Retry-After says); its cleaned
copy keeps the photo's name, format and subfolder: <root>/a/b.jpg becomes <out>/a/b-clearmark.jpg,
the name the gateway's own download gives. Exits 1 when any photo failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from gateway.settings import Settings
from gateway.upload import CLEANED_SUFFIX
from gateway.validation import FILE_EXTENSIONS, SUPPORTED_FORMATS, sniff_format
from serving.client import multipart_form, post_image

DEFAULT_URL = "http://127.0.0.1:8000"
REMOVE_PATH = "/api/v1/remove"
# File name suffix -> Pillow format name: what a folder walk sends. A mask may be any of them.
IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# Tried in this order for a photo's mask: PNG first, as masks are drawn lossless.
MASK_SUFFIXES = (".png", ".webp", ".jpg", ".jpeg")
ALREADY_CLEANED = "already cleaned (--overwrite to redo)"

CLEANED, SKIPPED, FAILED = "cleaned", "skipped", "failed"

MASK_HELP = """\
masks (--mask-dir): the photo <root>/a/b.jpg of a folder <root> takes the mask
<mask-dir>/a/b.png, or else a/b with any image extension (.webp, .jpg, .jpeg), and a
photo named on its own (x/c.jpg) takes <mask-dir>/c.png the same way. White (>= 128) is
watermark; the mask must be the photo's size. A photo without a mask is cleaned where
clearmark's model finds a watermark."""


@dataclass(frozen=True)
class Photo:
    """One upload to make: the photo, its Pillow format, where its cleaned copy goes, and the
    person's mask to send with it (None: the model's own)."""

    source: Path
    image_format: str
    cleaned: Path
    mask: Path | None


@dataclass(frozen=True)
class Outcome:
    """What became of one file: CLEANED, SKIPPED or FAILED, and why when it was not cleaned."""

    source: Path
    result: str
    reason: str = ""


def walk(path: Path) -> Iterator[tuple[Path, Path]]:
    """(file, its path relative to the folder given) for a folder, sorted, recursively;
    (path, its name) for anything else."""
    if not path.is_dir():
        yield path, Path(path.name)
        return
    for folder, subfolders, names in os.walk(path):
        subfolders.sort()
        for name in sorted(names):
            source = Path(folder) / name
            yield source, source.relative_to(path)


def cleaned_path(out: Path, relative: Path, image_format: str) -> Path:
    """Where the cleaned copy of a photo goes: its subfolder under out, '<stem>-clearmark.<ext>'
    with the extension of its format (.jpeg photos come back as .jpg, as from the gateway)."""
    name = f"{relative.stem}-{CLEANED_SUFFIX}.{FILE_EXTENSIONS[image_format]}"
    return out / relative.parent / name


def find_mask(mask_dir: Path, relative: Path) -> Path | None:
    """The mask paired with a photo by its relative path and stem (MASK_HELP), or None."""
    for suffix in MASK_SUFFIXES:
        candidate = mask_dir / relative.parent / f"{relative.stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def image_format_of(source: Path) -> str:
    """The Pillow format of a photo from its first bytes; from its extension when those are
    none we know, so that the gateway, not this tool, says what is wrong with it."""
    with source.open("rb") as file:
        head = file.read(16)
    return sniff_format(head) or IMAGE_SUFFIXES[source.suffix.lower()]


def plan(
    paths: Iterable[Path], out: Path | None, mask_dir: Path | None, overwrite: bool
) -> tuple[list[Photo], list[Outcome]]:
    """The uploads to make, and the files left alone with why. Inside a folder walked, files
    under out or mask_dir are this tool's own and left out silently. Without out a photo's
    cleaned copy goes beside it."""
    photos: dict[Path, Photo] = {}  # by cleaned copy
    left: list[Outcome] = []
    own = [folder.resolve() for folder in (out, mask_dir) if folder is not None]
    for path in paths:
        if not path.exists():
            left.append(Outcome(path, FAILED, "no such file or folder"))
            continue
        in_folder = path.is_dir()
        base = out if out is not None else path if in_folder else path.parent
        for source, relative in walk(path):
            if in_folder and any(source.resolve().is_relative_to(folder) for folder in own):
                continue
            planned = plan_photo(source, relative, in_folder, base, mask_dir, overwrite)
            if isinstance(planned, Outcome):
                left.append(planned)
                continue
            twin = photos.setdefault(planned.cleaned, planned)
            if twin is not planned:  # b.jpg and b.jpeg: one name for both cleaned copies
                left.append(Outcome(source, FAILED, f"its cleaned copy would be {twin.source}'s"))
    return list(photos.values()), left


def plan_photo(
    source: Path,
    relative: Path,
    in_folder: bool,
    base: Path,
    mask_dir: Path | None,
    overwrite: bool,
) -> Photo | Outcome:
    """The upload to make for one file, or why there is none: a file that is no photo is
    skipped in a folder and a failure when named on its own."""
    if source.suffix.lower() not in IMAGE_SUFFIXES:
        result = SKIPPED if in_folder else FAILED
        return Outcome(source, result, "not a PNG, JPEG or WebP file name")
    if in_folder and source.stem.endswith(f"-{CLEANED_SUFFIX}"):
        return Outcome(source, SKIPPED, "a cleaned copy")
    try:
        image_format = image_format_of(source)
    except OSError as exc:
        return Outcome(source, FAILED, str(exc))
    cleaned = cleaned_path(base, relative, image_format)
    if cleaned.exists() and not overwrite:
        return Outcome(source, SKIPPED, ALREADY_CLEANED)
    mask = find_mask(mask_dir, relative) if mask_dir is not None else None
    return Photo(source, image_format, cleaned, mask)


def gateway_message(status: int, body: bytes) -> str:
    """'<status> <the gateway's error message>' from a JSON {"error": ...} answer, or the
    body's text when it is not one."""
    text = body.decode(errors="replace")
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        error = None
    return f"{status} {error if isinstance(error, str) else text.strip()[:200]}"


def clean_photo(url: str, photo: Photo) -> Outcome:
    """Upload one photo (with its mask, as multipart) and write its cleaned copy."""
    try:
        image = photo.source.read_bytes()
        mime = SUPPORTED_FORMATS[photo.image_format]
        if photo.mask is None:
            body, content_type = image, mime
        else:
            mask = photo.mask.read_bytes()
            mask_mime = SUPPORTED_FORMATS.get(sniff_format(mask) or "", "application/octet-stream")
            body, content_type = multipart_form(
                {
                    "image": (photo.source.name, mime, image),
                    "mask": (photo.mask.name, mask_mime, mask),
                }
            )
        answer = post_image(url, REMOVE_PATH, body, content_type)
        if answer.status != 200:
            return Outcome(photo.source, FAILED, gateway_message(answer.status, answer.body))
        photo.cleaned.parent.mkdir(parents=True, exist_ok=True)
        # Written aside then renamed: an interrupted run leaves no half-written copy that the
        # next run would take as done.
        partial = photo.cleaned.with_name(f".{photo.cleaned.name}.partial")
        partial.write_bytes(answer.body)
        partial.replace(photo.cleaned)
    except urllib.error.URLError as exc:
        if isinstance(exc, urllib.error.HTTPError):  # the challenge refused, not the upload
            return Outcome(photo.source, FAILED, f"proof-of-work challenge: {exc}")
        return Outcome(photo.source, FAILED, f"cannot reach the gateway at {url}: {exc.reason}")
    except (OSError, RuntimeError) as exc:  # an unreadable file, an unsolved challenge
        return Outcome(photo.source, FAILED, str(exc))
    return Outcome(photo.source, CLEANED)


def clean_all(photos: list[Photo], jobs: int, upload: Callable[[Photo], Outcome]) -> list[Outcome]:
    """upload each photo, jobs at a time, with a progress bar on stderr."""
    with (
        ThreadPoolExecutor(max_workers=jobs) as pool,
        tqdm(total=len(photos), unit="photo", file=sys.stderr, disable=not photos) as bar,
    ):
        outcomes = []
        failed = 0
        for future in as_completed([pool.submit(upload, photo) for photo in photos]):
            outcome = future.result()
            outcomes.append(outcome)
            failed += outcome.result == FAILED
            bar.set_postfix(failed=failed, refresh=False)
            bar.update()
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    """The counts, then each file not cleaned and why; files already cleaned as one count."""
    counts = Counter(outcome.result for outcome in outcomes)
    lines = [f"cleaned {counts[CLEANED]}, skipped {counts[SKIPPED]}, failed {counts[FAILED]}"]
    done = sum(outcome.reason == ALREADY_CLEANED for outcome in outcomes)
    if done:
        lines.append(f"skipped {done} {ALREADY_CLEANED}")
    for outcome in sorted(outcomes, key=lambda o: (o.result, str(o.source))):
        if outcome.result != CLEANED and outcome.reason != ALREADY_CLEANED:
            lines.append(f"{outcome.result} {outcome.source}: {outcome.reason}")
    return "\n".join(lines)


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a whole number >= 1")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The clean command's arguments, shared by `clearmark clean` and `python -m serving.clean`."""
    per_client = Settings().max_uploads_per_client
    parser.description = __doc__.split("\n\n")[0]
    parser.epilog = MASK_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="photos and folders")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="folder for the cleaned copies, subfolders kept (default: beside each photo)",
    )
    parser.add_argument(
        "--url", default=DEFAULT_URL, metavar="URL", help=f"the gateway (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=2,
        metavar="N",
        help=f"uploads in flight (default 2; a gateway takes {per_client} per client by "
        "default and answers more with 429, which is waited out)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="clean again photos whose cleaned copy exists"
    )
    parser.add_argument(
        "--mask-dir", type=Path, metavar="DIR", help="folder of masks paired by name (below)"
    )


def run(args: argparse.Namespace) -> int:
    """Clean what args name, print the summary; 1 when any file failed."""
    photos, left = plan(args.paths, args.out, args.mask_dir, args.overwrite)
    url = args.url.rstrip("/")
    outcomes = left + clean_all(photos, args.jobs, lambda photo: clean_photo(url, photo))
    print(summary(outcomes), flush=True)
    return 1 if any(outcome.result == FAILED for outcome in outcomes) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.clean")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
