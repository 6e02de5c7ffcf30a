"""Model archives that differ from the served one in batchSize only, for the batching speed-up."""

from __future__ import annotations

import re
from pathlib import Path

from handler.archive import MODEL_CONFIG, build_archive

BATCH_SIZE_LINE = re.compile(r"^batchSize:[ \t]*\d+[ \t]*$", re.MULTILINE)


def with_batch_size(model_config: str, batch_size: int) -> str:
    """model-config.yaml's text with its top-level ``batchSize`` replaced, every other line
    (comments included) as it was."""
    replaced, count = BATCH_SIZE_LINE.subn(f"batchSize: {batch_size}", model_config)
    if count != 1:
        raise ValueError(f"expected one top-level 'batchSize: <n>' line, found {count}")
    return replaced


def variant_store(
    checkpoint: Path, batch_size: int, root: Path, restorer: Path | None = None
) -> Path:
    """A model store under ``root`` holding clearmark.mar built with ``batch_size`` (and the
    learned ``restorer`` when given)."""
    folder = root / f"batch-{batch_size}"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "model-config.yaml"
    config.write_text(with_batch_size(MODEL_CONFIG.read_text(), batch_size))
    return build_archive(
        checkpoint, folder / "store", model_config=config, restorer=restorer
    ).parent
