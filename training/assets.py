"""The assets stage: fetch the Debian packages that hold training wallpapers, fonts and logos.

``apt-get download`` fetches each package's .deb (no root needed once apt's package lists
exist) and ``dpkg -x`` unpacks it under ``<out>/root``, a git-ignored cache; nothing is
installed on the system. The other modules read the files from there:
training.photos (wallpapers), training.fonts, training.logos.

    python -m training.assets --out data/debian
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
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


class AptMissing(RuntimeError):
    """apt-get or dpkg is not available, or apt cannot fetch a package."""


def fetch_packages(packages: list[str], out: Path) -> Path:
    """Download and unpack ``packages`` into ``out/root``; returns that folder.

    A package already unpacked (its marker ``out/unpacked/<name>`` exists) is not fetched again.
    """
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise AptMissing(
                f"{tool} not found: the bundled photo source needs a Debian or Ubuntu system to "
                "fetch wallpapers, fonts and logos (or use prepare.source: folder)"
            )
    root, markers = out / "root", out / "unpacked"
    markers.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not (markers / p).exists()]
    if missing:
        with tempfile.TemporaryDirectory(dir=out) as download_dir:
            result = subprocess.run(
                ["apt-get", "download", *missing],
                cwd=download_dir,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise AptMissing(
                    f"apt-get download {' '.join(missing)} failed "
                    f"(run `apt-get update` first?):\n{result.stderr.strip()}"
                )
            for deb in sorted(Path(download_dir).glob("*.deb")):
                subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
                name = deb.name.split("_")[0]
                (markers / name).touch()
    # Packages ship links to files of packages not unpacked here (fontconfig's conf.d):
    # dangling, they break DVC's hashing of this folder.
    for link in [p for p in root.rglob("*") if p.is_symlink() and not p.exists()]:
        link.unlink()
    return root


def all_packages() -> list[str]:
    return [package for group in PACKAGES.values() for package in group]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    root = fetch_packages(all_packages(), args.out)
    print(f"{len(all_packages())} Debian packages unpacked under {root}")


if __name__ == "__main__":
    main()
