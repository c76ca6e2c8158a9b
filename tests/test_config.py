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


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_lists_every_key(path: Path) -> None:
    """A shipped config is also the reference of its keys: one added to Config must show up."""
    import yaml

    data = yaml.safe_load(path.read_text())
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


def test_paths_in_a_config_file_are_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    path = folder / "c.yaml"
    path.write_text(
        "dataset:\n  path: ../data/mine\n  kg_path: kg\n"
        "features:\n  model: ./models/encoder\n"
        f"artifacts: ../artifacts/mine\nstate_dir: {tmp_path / 'state'}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path, {"dataset.name": "x"})
    project = tmp_path / "project"
    assert Path(config.dataset.path) == project / "data" / "mine"
    assert Path(config.dataset.kg_path or "") == folder / "kg"
    assert Path(config.features.model) == folder / "models" / "encoder"
    assert config.artifacts_dir == project / "artifacts" / "mine"
    assert config.state_path == tmp_path / "state"
    # words that are not paths stay as they are; overrides are relative to the cwd
    plain = load_config(path, {"train.serve": "teacher", "artifacts": "out"})
    assert plain.train.serve == "teacher" and plain.artifacts == "out"
    path.write_text("features:\n  model: sentence-transformers/all-MiniLM-L6-v2\n")
    assert load_config(path).features.model == "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_name_the_same_places_from_any_directory(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = path.parents[1]
    monkeypatch.chdir(repo)
    from_root = load_config(Path("configs") / path.name)
    monkeypatch.chdir(tmp_path)
    from_elsewhere = load_config(path)
    assert (repo / from_root.artifacts).resolve() == Path(from_elsewhere.artifacts).resolve()
    assert Path(from_root.artifacts).parts[0] == "artifacts"  # artifacts/ in the checkout
    dataset = (repo / from_root.dataset.path).resolve()
    assert dataset == Path(from_elsewhere.dataset.path).resolve()
    assert dataset.is_relative_to(repo / "data") or dataset.is_relative_to(
        repo.parent / "shared" / "datasets"
    )


def test_kgrec_config_is_the_default_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kgrec.cli.common import load_cli_config

    path = tmp_path / "mine.yaml"
    path.write_text("store:\n  graph: mine\nartifacts: out\n")
    monkeypatch.setenv("KGREC_CONFIG", str(path))
    config = load_cli_config(None, {})
    assert config.store.graph == "mine" and config.artifacts_dir == tmp_path / "out"
    assert load_cli_config(CONFIGS[0], {}).store.graph != "mine"  # -c wins
    monkeypatch.setenv("KGREC_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(KgrecError, match=r"KGREC_CONFIG names no config file: .*missing\.yaml"):
        load_cli_config(None, {})
