"""Configuration: every shipped YAML loads, every key is commented, bad keys are named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kgrec.config import Config, load_config, set_key
from kgrec.errors import KgrecError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_the_expected_configs_ship() -> None:
    assert {p.stem for p in CONFIGS} >= {"demo", "ml-100k", "ml-latest-small", "ml-1m", "kgat"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_loads(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.dataset.path


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_key_is_commented(path: Path) -> None:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, f"{path.name}:{number} has no comment: {line!r}"


def test_demo_config_lists_every_key() -> None:
    import yaml

    data = yaml.safe_load((CONFIGS[0].parent / "demo.yaml").read_text())
    for section in dataclasses.fields(Config):
        default = getattr(Config(), section.name)
        assert section.name in data, section.name
        if dataclasses.is_dataclass(default):
            assert set(data[section.name]) == {f.name for f in dataclasses.fields(default)}


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("store:\n  batchsize: 10\n")
    with pytest.raises(KgrecError, match=r"store: unknown key 'batchsize'"):
        load_config(path)


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("split:\n  method: random\n")
    with pytest.raises(KgrecError, match=r"split.method: 'random' is not one of"):
        load_config(path)


def test_overrides_win_and_none_is_ignored() -> None:
    config = load_config(None, {"store.batch_size": 7, "artifacts": "x", "split.method": None})
    assert config.store.batch_size == 7
    assert config.artifacts == "x"
    assert config.split.method == "temporal_loo"
    assert set_key(config, "eval.ks", [5]).eval.ks == (5,)


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().artifacts = "y"  # type: ignore[misc]


def test_state_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KGREC_HOME", str(tmp_path))
    assert Config().state_path == tmp_path
    assert Config(state_dir=str(tmp_path / "s")).state_path == tmp_path / "s"
