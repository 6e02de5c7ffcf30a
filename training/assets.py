"""The assets stage: fetch the Debian packages that hold training wallpapers, fonts and logos.

``apt-get download`` fetches each package's .deb (no root needed once apt's package lists
exist) and ``dpkg -x`` unpacks it under ``<out>/root``, a git-ignored cache; nothing is
installed on the system. Builds of the same packages from other Debian releases
(``RELEASE_DEBS``) are fetched from the Debian archive by file name, checked against their
SHA-256 and only their pictures' folder unpacked under ``<out>/releases``. The other modules
read the files from there: training.photos (wallpapers), training.fonts, training.logos.

    python -m training.assets --out data/debian
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# The only packages training may draw from (issue 3); everything else stays out of training so
# that the evaluation on held-out fonts and logos is honest.
PACKAGES = {
    "photos": (
        "mate-backgrounds",
        "gnome-backgrounds",
        "desktop-base",
        # Training-only textures, samples and cut-outs (issue 10; training/photos.py)
        "supertuxkart-data",
        "opencv-doc",
        "tuxpaint-stamps-default",
    ),
    "fonts": (
        "fonts-dejavu-core",
        "fonts-dejavu-extra",
        "fonts-freefont-ttf",
        "fonts-noto-core",
        "fonts-open-sans",
        "fonts-ebgaramond",
        "fonts-comic-neue",
        "fonts-dancingscript",
    ),
    "logos": ("tango-icon-theme", "adwaita-icon-theme"),
}

# Packages of which one folder is unpacked (from bookworm, with apt-get download, as PACKAGES):
# stellarium-data is 246 MB of star catalogues and sky cultures around the 20 MB of panorama
# photographs (landscapes) training uses (training/photos.py landscape_files).
FOLDER_PACKAGES = {"stellarium-data": "usr/share/stellarium/landscapes"}


# Other releases' builds of packages the issue allows, for the photographs bookworm's builds do
# not ship (checked by eye, 2026-12-07): enlightenment-data 0.27 (trixie) holds 23 wallpapers,
# 14 of them 4K photographs (maples, bamboo, snowy trees, peaks, lanterns, flowers; bookworm's
# 0.25 has themes and flags only), gnome-backgrounds 3.38 (bullseye) 15 pictures, 7 of them
# photographs (a road through a forest, a sea at sunset, ivy, twigs, a painting) where 43 has
# drawings. Not used: mate-backgrounds of other releases ships the same files; desktop-base 11
# and 13 ship their themes as SVG drawings (file lists checked); gnome-backgrounds 48 and 51
# are JPEG XL, which Pillow does not read (not opened).
@dataclass(frozen=True)
class ReleaseDeb:
    path: str  # in the Debian archive, as its Packages index names it
    sha256: str  # the index's, so a changed or truncated file is refused
    folder: str  # the one folder of the package that is unpacked


DEBIAN_ARCHIVE = "http://deb.debian.org/debian"
RELEASE_DEBS = (
    ReleaseDeb(
        "pool/main/e/e17/enlightenment-data_0.27.1-1_all.deb",
        "ae458da8b60be2d61447e2b91f1072e90ac508e92fbe980430dc6cb6d512e6ab",
        "usr/share/enlightenment/data/backgrounds",
    ),
    ReleaseDeb(
        "pool/main/g/gnome-backgrounds/gnome-backgrounds_3.38.0-1_all.deb",
        "76d8a4c52e5f346d9cb08bc8a1f58ad443d2bae211721af8a7248457c7a520e8",
        "usr/share/backgrounds/gnome",
    ),
)


class AptMissing(RuntimeError):
    """apt-get or dpkg is not available, or a package cannot be fetched."""


def require_tools(tools: tuple[str, ...], why: str) -> None:
    """Raise AptMissing naming the first of ``tools`` not on PATH; ``why`` says what needs it."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise AptMissing(f"{tool} not found: {why}")


def apt_download(packages: list[str], folder: Path) -> list[Path]:
    """``apt-get download`` of ``packages`` into ``folder``; the .deb files, by name."""
    result = subprocess.run(
        ["apt-get", "download", *packages],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    debs = sorted(folder.glob("*.deb"))
    if result.returncode != 0 or not debs:
        raise AptMissing(
            f"apt-get download {' '.join(packages)} failed "
            f"(run `apt-get update` first?):\n{result.stderr.strip()}"
        )
    return debs


def fetch_packages(packages: list[str], out: Path) -> Path:
    """Download and unpack ``packages`` into ``out/root``; returns that folder.

    A package already unpacked (its marker ``out/unpacked/<name>`` exists) is not fetched again.
    """
    require_tools(
        ("apt-get", "dpkg"),
        "the bundled photo source needs a Debian or Ubuntu system to fetch wallpapers, fonts "
        "and logos (or use prepare.source: folder)",
    )
    root, markers = out / "root", out / "unpacked"
    markers.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not (markers / p).exists()]
    if missing:
        with tempfile.TemporaryDirectory(dir=out) as download_dir:
            for deb in apt_download(missing, Path(download_dir)):
                subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
                name = deb.name.split("_")[0]
                (markers / name).touch()
    # Packages ship links to files of packages not unpacked here (fontconfig's conf.d):
    # dangling, they break DVC's hashing of this folder.
    for link in [p for p in root.rglob("*") if p.is_symlink() and not p.exists()]:
        link.unlink()
    return root


def fetch_package_folders(packages: dict[str, str], out: Path) -> Path:
    """Download each package of ``packages`` (name: folder) and unpack only its folder into
    ``out/root``; returns that folder. Unpacked once, as fetch_packages."""
    require_tools(("apt-get", "dpkg-deb"), "the folder packages need a Debian system")
    root, markers = out / "root", out / "unpacked"
    markers.mkdir(parents=True, exist_ok=True)
    for package, folder in packages.items():
        if (markers / package).exists():
            continue
        with tempfile.TemporaryDirectory(dir=out) as download_dir:
            for deb in apt_download([package], Path(download_dir)):
                _unpack_folder(deb, folder, root)
        (markers / package).touch()
    return root


def fetch_release_debs(
    debs: tuple[ReleaseDeb, ...], out: Path, archive: str = DEBIAN_ARCHIVE
) -> Path:
    """Download each of ``debs`` from ``archive``, check its SHA-256 and unpack its folder into
    ``out/releases/<package>_<version>``; returns ``out/releases``. A .deb already unpacked
    (its marker ``out/unpacked/<file name>`` exists) is not fetched again."""
    require_tools(("dpkg-deb",), "other releases' wallpapers need a Debian system")
    root, markers = out / "releases", out / "unpacked"
    markers.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        name = Path(deb.path).name
        if (markers / name).exists():
            continue
        with tempfile.TemporaryDirectory(dir=out) as download_dir:
            file = Path(download_dir) / name
            url = f"{archive}/{deb.path}"
            try:
                urllib.request.urlretrieve(url, file)
            except OSError as error:
                raise AptMissing(f"cannot download {url}: {error}") from error
            with file.open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            if digest != deb.sha256:
                raise AptMissing(f"{url} has SHA-256 {digest}, not the archive's {deb.sha256}")
            _unpack_folder(file, deb.folder, root / name.removesuffix("_all.deb"))
        (markers / name).touch()
    return root


def _unpack_folder(deb: Path, folder: str, dest: Path) -> None:
    """The files under ``folder`` of ``deb``'s data, into ``dest`` (the rest of a 400 MB
    package is themes and translations)."""
    command = ["dpkg-deb", "--fsys-tarfile", str(deb)]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as tar_stream:
        assert tar_stream.stdout is not None
        with tarfile.open(fileobj=tar_stream.stdout, mode="r|") as tar:
            for member in tar:
                if member.name.removeprefix("./").startswith(folder + "/"):
                    tar.extract(member, dest, filter="data")
    if tar_stream.returncode != 0:
        raise AptMissing(f"{' '.join(command)} failed ({tar_stream.returncode})")


def all_packages() -> list[str]:
    """The packages unpacked whole (FOLDER_PACKAGES are unpacked a folder only)."""
    return [package for group in PACKAGES.values() for package in group]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    root = fetch_packages(all_packages(), args.out)
    print(f"{len(all_packages())} Debian packages unpacked under {root}")
    fetch_package_folders(FOLDER_PACKAGES, args.out)
    print(f"{len(FOLDER_PACKAGES)} more packages' pictures' folder unpacked under {root}")
    releases = fetch_release_debs(RELEASE_DEBS, args.out)
    print(f"{len(RELEASE_DEBS)} other releases' builds unpacked under {releases}")


if __name__ == "__main__":
    main()
