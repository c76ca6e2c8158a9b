"""``manifest.json``: what ``build-graph`` built from what, with a sha256 of every file it
wrote, verified whenever the artifact is loaded (:func:`verify_artifact`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from kgrec import __version__
from kgrec.config import Config
from kgrec.data.layout import MANIFEST, TABLES_DIR
from kgrec.files import DamagedFileError, checksums, verify_checksums


def write_manifest(
    folder: Path, config: Config, dataset: str, counts: dict[str, int], notes: list[str]
) -> None:
    """``manifest.json``: what was built from what, and a sha256 of every file built."""
    built = ["graph.pt", "id_maps.parquet"]
    built += sorted(f"{TABLES_DIR}/{p.name}" for p in (folder / TABLES_DIR).glob("*.parquet"))
    manifest = {
        "kgrec_version": __version__,
        "dataset": dataset,
        "config": asdict(config),
        "counts": counts,
        "store": config.store.backend if config.store.enabled else None,
        "notes": notes,
        "files": checksums(folder, built),
    }
    (folder / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def rebuild_command(folder: Path | str) -> str:
    """The command that rebuilds the artifact folder ``folder``."""
    return f"kgrec build-graph --artifacts {folder} (with the -c config that built it)"


def verify_artifact(folder: Path | str) -> None:
    """Check every file ``build-graph`` wrote against the manifest's sha256.

    Raises:
        DamagedFileError: a file is missing, truncated or changed (one line naming it and
            the command that rebuilds it). Folders built before checksums pass unchecked.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        return
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DamagedFileError(path, "not readable JSON", rebuild_command(folder)) from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if isinstance(files, dict):
        verify_checksums(folder, files, rebuild_command(folder))
