"""The archive stage: pack the handler, the network code and the weights into a TorchServe .mar.

The handler imports ``handler.imaging``, ``training.checkpoint`` and ``training.model``; inside
the archive they keep that package layout, so the handler runs unchanged from the repo and from
TorchServe.

    python -m handler.archive --checkpoint model/clearmark.pt --restorer model/restorer.pt \
        --out model_store
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from handler.clearmark_handler import CHECKPOINT_FILE, RESTORER_FILE

MODEL_NAME = "clearmark"
REPO = Path(__file__).resolve().parent.parent
HANDLER = REPO / "handler" / "clearmark_handler.py"
MODEL_CONFIG = REPO / "handler" / "model-config.yaml"
# Modules the handler imports, archived under the same package paths.
PACKAGED_MODULES = (
    "handler/__init__.py",
    "handler/blendfit.py",
    "handler/engine.py",
    "handler/fold.py",
    "handler/imaging.py",
    "handler/jobs.py",
    "handler/pipeline.py",
    "handler/regions.py",
    "handler/settings.py",
    "handler/tiled.py",
    "training/__init__.py",
    "training/checkpoint.py",
    "training/model.py",
    "training/restorer.py",
)


def build_archive(
    checkpoint: Path,
    out_dir: Path,
    version: str = "1.0",
    model_config: Path = MODEL_CONFIG,
    restorer: Path | None = None,
) -> Path:
    """Write ``out_dir/clearmark.mar`` with the TorchServe settings of ``model_config`` (a
    variant of model-config.yaml, e.g. another batchSize for the benchmark), the learned
    ``restorer`` beside the detector when given, and return its path."""
    for weights_file in (checkpoint, restorer):
        if weights_file is not None and not weights_file.is_file():
            raise FileNotFoundError(f"checkpoint not found: {weights_file}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clearmark-mar-") as tmp:
        stage = Path(tmp) / "extra"
        for module in PACKAGED_MODULES:
            (stage / module).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / module, stage / module)
        if restorer is not None:
            shutil.copy2(restorer, stage / RESTORER_FILE)
        weights = Path(tmp) / CHECKPOINT_FILE
        shutil.copy2(checkpoint, weights)
        archiver = Path(sys.executable).with_name("torch-model-archiver")
        subprocess.run(
            [
                str(archiver),
                "--model-name", MODEL_NAME,
                "--version", version,
                "--serialized-file", str(weights),
                "--handler", str(HANDLER),
                "--extra-files", str(stage),
                "--config-file", str(model_config),
                "--export-path", str(out_dir),
                "--force",
            ],
            check=True,
        )  # fmt: skip
    return out_dir / f"{MODEL_NAME}.mar"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--restorer", type=Path, default=None, help="training/restorer.py's")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(f"wrote {build_archive(args.checkpoint, args.out, restorer=args.restorer)}")


if __name__ == "__main__":
    main()
