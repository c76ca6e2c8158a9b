"""The synthetic dataset generator of ``benchmarks/synthetic.py``: valid contract data of the
asked size, distinct pairs, skewed popularity, sessions in time, and the same files per seed."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from kgrec.data.contract import read_folder
from kgrec.data.validate import validate

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "synthetic.py"


@pytest.fixture(scope="module")
def synthetic() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("synthetic", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["synthetic"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["synthetic"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_generated_data_is_valid_contract_data_of_the_asked_size(
    synthetic: ModuleType, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synthetic, "USERS_PER_BLOCK", 70)  # several blocks
    report = synthetic.generate(
        tmp_path / "data", interactions=12_000, users=300, items=400, seed=3, fmt=fmt
    )
    assert (report.users, report.items, report.interactions) == (300, 400, 12_000)
    dataset = validate(read_folder(tmp_path / "data"))
    assert not dataset.notes  # no duplicate pairs merged, nothing dropped
    inter = dataset.interactions
    assert len(inter) == 12_000 and not inter.duplicated(["user_id", "item_id"]).any()
    assert inter["user_id"].nunique() == 300 and inter.groupby("user_id").size().min() >= 5
    popularity = inter["item_id"].value_counts().to_numpy()
    assert popularity[:40].sum() > 3 * popularity[-40:].sum()  # a head and a long tail
    gaps = inter.sort_values(["user_id", "timestamp"]).groupby("user_id")["timestamp"].diff()
    assert (gaps.dropna() >= 0).all() and gaps.median() < 3_600 < gaps.quantile(0.95)
    assert set(inter["rating"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len(dataset.triples) == report.triples and len(dataset.entities) == report.entities
    relations = set(dataset.triples["relation"])
    assert relations == {"has_genre", "directed_by", "starring"}
    assert dataset.items["title"].str.startswith("The ").all()
    assert dataset.entities["name"].notna().all()


def test_same_seed_same_files_other_seed_other_files(synthetic: ModuleType, tmp_path: Path) -> None:
    sizes = {"interactions": 3_000, "users": 100, "items": 150}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        synthetic.generate(tmp_path / name, seed=seed, **sizes)
    a, b, c = (pd.read_parquet(tmp_path / n / "interactions.parquet") for n in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert not np.array_equal(a["item_id"].to_numpy(), c["item_id"].to_numpy())


def test_impossible_sizes_are_refused(synthetic: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="half of all user-item pairs"):
        synthetic.generate(tmp_path, interactions=6_000, users=100, items=100)
    with pytest.raises(ValueError, match="at least 5"):
        synthetic.generate(tmp_path, interactions=100, users=100, items=100)
