"""benchmarks/quality.py and sweep.py: variants, grids, summaries, a baselines-only run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from kgrec.config import Config, parse_overrides
from kgrec.errors import KgrecError
from kgrec.eval.baselines import GRIDS
from kgrec.eval.protocol import ModelRun

from .test_protocol import tiny_dataset

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


quality = load_script("quality.py")
sweep = load_script("sweep.py")
lightgcn_step = load_script("lightgcn_step.py")
sequence_blend = load_script("sequence_blend.py")


def test_variants_override_the_config() -> None:
    base = Config()
    no_kg = quality.variant_config(base, "no_kg", 3)
    assert not no_kg.model.use_kg and no_kg.train.seed == 3
    assert "entity" not in no_kg.teacher.components
    assert set(no_kg.teacher.components) == set(base.teacher.components) - {"entity"}
    no_text = quality.variant_config(base, "no_text", 0)
    assert not no_text.model.use_text and "text" not in no_text.teacher.components
    assert quality.reads_text(base) and not quality.reads_text(no_text)  # no features encoded
    assert quality.variant_config(base, "gnn", 0).train.serve == "gnn"
    assert quality.variant_config(base, "no_kd", 0).train.kd_weight == 0.0
    sampled = quality.variant_config(base, "sampled", 0).train
    assert (sampled.item_sampling, sampled.num_negatives) == ("sampled", 256)
    assert quality.variant_config(base, "kgrec", 1) == Config(train=base.train.__class__(seed=1))
    with pytest.raises(KgrecError, match="unknown variant 'bogus'"):
        quality.variant_config(base, "bogus", 0)


def test_baseline_grids_take_replacements_and_quick_grids() -> None:
    grids = quality.baseline_grids(["ease.l2=10,20", "lightgcn.epochs=7"])
    assert grids["ease"]["l2"] == (10, 20)
    assert grids["lightgcn"]["epochs"] == (7,)
    assert grids["itemknn"] == GRIDS["itemknn"]  # untouched
    quick = quality.baseline_grids([], quick=True)
    assert all(
        len(quick[n]["decay"]) < len(GRIDS[n]["decay"]) for n in quick if "decay" in quick[n]
    )
    assert quick["lightgcn"]["epochs"] == (20,) and quick["lightgcn"]["num_layers"] == (3,)
    with pytest.raises(KgrecError, match="no such baseline parameter"):
        quality.baseline_grids(["ease.k=1"])
    with pytest.raises(KgrecError, match="key=value"):
        quality.baseline_grids(["ease.l2"])


def run(model: str, seed: int | None, ndcg: list[float], validation: float = 0.0) -> ModelRun:
    values = torch.tensor(ndcg, dtype=torch.float64)
    mean = float(values.mean())
    metrics = {"ndcg@20": mean, "recall@20": mean, "coverage@20": 0.5}
    users = torch.arange(len(ndcg))
    return ModelRun(model, seed, metrics, validation, 1.0, users, values)


def test_summary_compares_with_the_best_baseline_by_test_mean() -> None:
    runs = [
        run("popular", None, [0.0, 0.0, 0.2, 0.2], validation=0.9),  # best on validation only
        run("ease", None, [0.2, 0.2, 0.4, 0.4]),
        run("kgrec", 0, [0.3, 0.3, 0.5, 0.5]),
        run("kgrec", 1, [0.3, 0.3, 0.5, 0.5]),
    ]
    summary = quality.summarize(runs, ["popular", "ease"], torch.tensor([0, 1]), 2000)
    assert summary["best_baseline"] == "ease"
    rows = {row["model"]: row for row in summary["rows"]}
    kgrec = rows["kgrec"]
    assert kgrec["seeds"] == [0, 1]
    assert kgrec["ndcg@20"]["mean"] == pytest.approx(0.4)
    assert kgrec["ndcg@20"]["std"] == pytest.approx(0.0)
    assert kgrec["cold_ndcg@20"]["mean"] == pytest.approx(0.3)  # users 0 and 1
    assert kgrec["ratio_to_best_baseline"] == pytest.approx(0.4 / 0.3)
    interval = kgrec["vs_best_baseline"]  # every user gains exactly 0.1: a point interval
    assert interval["difference"] == pytest.approx(0.1)
    assert interval["low"] == pytest.approx(0.1) and interval["high"] == pytest.approx(0.1)
    assert "vs_best_baseline" not in rows["ease"]
    assert rows["popular"]["vs_best_baseline"]["high"] < 0
    assert summary["per_user"]["kgrec"].tolist() == pytest.approx([0.3, 0.3, 0.5, 0.5])
    text = quality.markdown(summary, "header", 20, 2)
    assert "| **ease** |" in text and "ratio to ease" in text and "1.333" in text


def tiny_argv(tmp_path: Path) -> list[str]:
    """quality.py arguments for a 30-user dataset config written under ``tmp_path`` (LOO)."""
    data = tiny_dataset(tmp_path / "data", users=30)
    config = tmp_path / "tiny.yaml"
    config.write_text(f"dataset:\n  path: {data}\n  name: tiny\n", encoding="utf-8")
    return ["-c", str(config), "--protocol", "loo", "--artifacts", str(tmp_path / "a")]


def test_baselines_only_run_writes_markdown_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q.json"
    argv = tiny_argv(tmp_path)
    argv += ["--variants", "", "--baselines", "popular,ease", "--quick", "--out", str(out)]
    quality.main(argv)
    printed = capsys.readouterr().out
    assert "| **ease** |" in printed or "| **popular** |" in printed
    report = json.loads(out.read_text("utf-8"))
    assert report["protocol"] == "loo" and report["split"]["method"] == "temporal_loo"
    assert report["baselines"]["ease"]["params"]["l2"] in quality.QUICK_GRIDS["ease"]["l2"]
    assert len(report["baselines"]["ease"]["trials"]) == len(quality.QUICK_GRIDS["ease"]["l2"])
    assert {r["model"] for r in report["runs"]} == {"popular", "ease"}
    assert out.with_suffix(".npz").exists()


def test_lightgcn_step_benchmark_times_both_paths_on_the_same_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = tiny_argv(tmp_path)
    quality.main(
        [*argv, "--variants", "", "--baselines", "popular", "--out", str(tmp_path / "q.json")]
    )
    capsys.readouterr()
    sizes = ["--embedding-dim", "8", "--batch-size", "16", "--steps", "3", "--repeats", "2"]
    lightgcn_step.main(["--artifacts", str(tmp_path / "a"), *sizes, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["max_abs_difference"] < 1e-5
    assert result["steps_timed"] == {"pyg": 4, "propagate": 4}
    assert result["directed_edges"] > 0 and result["speedup"] > 0


def test_sweep_selects_on_validation_not_test() -> None:
    runs = [
        {"point": {"a": 1}, "val_ndcg@20": 0.3, "test_ndcg@20": 0.1, "test_recall@20": 0.1},
        {"point": {"a": 1}, "val_ndcg@20": 0.5, "test_ndcg@20": 0.1, "test_recall@20": 0.1},
        {"point": {"a": 2}, "val_ndcg@20": 0.35, "test_ndcg@20": 0.9, "test_recall@20": 0.9},
        {"point": {"a": 3}, "error": "bad"},
    ]
    for r in runs:
        r["seconds"] = 1.0
    lines = sweep.table(runs, ["a"])
    assert lines[2].startswith('| `{"a": 1}` **(selected)** | 2 | 0.4000 ± 0.1414 | 0.1000')
    assert lines[3].startswith('| `{"a": 2}` | 1 | 0.3500 | 0.9000')
    assert len(lines) == 4  # the failed point is left out


def test_sweep_tasks_cover_the_grid_and_seeds(tmp_path: Path) -> None:
    args = sweep.argparse.Namespace(
        config="c.yaml",
        protocol="ratio",
        artifacts=None,
        grid=["train.kd_weight=0.5,1", "model.use_kg=true,false"],
        seeds="0,1",
    )
    tasks = sweep.tasks_of(args, {"train.device": "cpu"})
    assert len(tasks) == 8
    assert {t.name for t in tasks} >= {"kd_weight=0.5,use_kg=True,seed=0"}
    config = sweep.config_of(
        sweep.Task(None, "ratio", str(tmp_path), {}, {"train.kd_weight": 2.0}, 5, "x")
    )
    assert config.split.method == "temporal_ratio" and config.train.kd_weight == 2.0
    assert config.train.seed == 5 and config.artifacts_dir == tmp_path
    with pytest.raises(SystemExit, match="key=v1,v2"):
        sweep.parse_grid(["nothing"])


def test_sweep_points_are_one_at_a_time_changes_after_the_grid() -> None:
    args = sweep.argparse.Namespace(
        config="c.yaml",
        protocol="ratio",
        artifacts=None,
        grid=[],
        points=["base", "model.temperature=0.05", "train.kd_weight=0.5,train.lr=0.001"],
        seeds="0",
    )
    points = [t.point for t in sweep.tasks_of(args, {})]
    assert points == [{}, {"model.temperature": 0.05}, {"train.kd_weight": 0.5, "train.lr": 0.001}]
    args.grid = ["train.epochs=5,10"]
    assert [t.point for t in sweep.tasks_of(args, {})][:2] == [
        {"train.epochs": 5},
        {"train.epochs": 10},
    ]
    runs = [
        {"point": {}, "val_ndcg@20": 0.2, "test_ndcg@20": 0.2, "test_recall@20": 0.2},
        {"point": {"t": 1}, "val_ndcg@20": 0.3, "test_ndcg@20": 0.1, "test_recall@20": 0.1},
    ]
    for r in runs:
        r["seconds"] = 1.0
    lines = sweep.table(runs, ["t"])
    assert lines[2].startswith('| `{"t": 1}` **(selected)** |') and lines[3].startswith("| `{}` |")
    with pytest.raises(SystemExit, match="key=value"):
        sweep.parse_points(["model.temperature"])
    assert parse_overrides(["train.blend_grid=[0, 5, 50]", "train.refit=false"]) == {
        "train.blend_grid": [0, 5, 50],
        "train.refit": False,
    }
    with pytest.raises(KgrecError, match="--set expects key=value"):
        parse_overrides(["train.refit"])


def test_resume_reads_back_finished_units_and_refuses_other_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "q.json"
    argv = tiny_argv(tmp_path)
    argv += ["--baselines", "popular,ease", "--quick", "--out", str(out)]
    argv += ["--variants", "kgrec", "--seeds", "0", "--set", "train.epochs=1"]
    quality.main(argv)
    first = json.loads(out.read_text("utf-8"))
    units = sorted(p.name for p in out.with_suffix(".runs").iterdir())
    assert units == ["ease-seednone.pt", "kgrec-seed0.pt", "popular-seednone.pt"]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished unit was recomputed")

    monkeypatch.setattr(quality, "tune_baseline", refuse)
    monkeypatch.setattr(quality, "train_and_test", refuse)
    quality.main([*argv, "--resume"])
    second = json.loads(out.read_text("utf-8"))
    assert second["runs"] == first["runs"] and second["baselines"] == first["baselines"]
    assert second["summary"] == first["summary"]

    with pytest.raises(KgrecError, match=r"ease-seednone\.pt: saved by a run with other"):
        quality.main([*argv, "--resume", "--grid", "ease.l2=7"])

    # a unit saved before train.item_sampling existed (issue 11) reads back while the run keeps
    # the behaviour from before that key; another value makes it another configuration
    unit = out.with_suffix(".runs") / "kgrec-seed0.pt"
    payload = torch.load(unit, weights_only=True)
    spec = json.loads(payload["spec"])
    for key in quality.ADDED_KEYS["train"]:
        del spec["config"]["train"][key]
    payload["spec"] = quality.canonical(spec)
    torch.save(payload, unit)
    quality.main([*argv, "--resume"])
    assert json.loads(out.read_text("utf-8"))["runs"] == first["runs"]
    sampled = ["--set", "train.epochs=1", "train.item_sampling=sampled"]
    with pytest.raises(KgrecError, match=r"kgrec-seed0\.pt: saved by a run with other"):
        quality.main([*argv, "--resume", *sampled])


def test_seeded_baseline_searches_its_grid_on_the_first_seed_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = {"embedding_dim": (64, 256), "lr": (1e-3, 5e-3), "epochs": (300,)}
    chosen = {"embedding_dim": 256, "lr": 1e-3, "epochs": 290}
    assert quality.chosen_grid(grid, chosen) == {
        "embedding_dim": (256,),
        "lr": (1e-3,),
        "epochs": (300,),  # each seed early-stops on its own, up to the same bound
    }

    grids: list[dict[str, tuple[object, ...]]] = []
    real = quality.tune_baseline

    def recording(name: str, artifact: object, **kwargs: object) -> object:
        grids.append(dict(kwargs["grid"]))  # type: ignore[call-overload]
        return real(name, artifact, **kwargs)

    monkeypatch.setattr(quality, "tune_baseline", recording)
    out = tmp_path / "q.json"
    argv = tiny_argv(tmp_path)
    argv += ["--variants", "", "--baselines", "lightgcn", "--quick", "--out", str(out)]
    argv += ["--baseline-seeds", "0,1", "--grid", "lightgcn.embedding_dim=8,16"]
    quality.main(argv)
    report = json.loads(out.read_text("utf-8"))
    first = report["baselines"]["lightgcn/seed0"]
    assert len(first["trials"]) == 2 and len(report["baselines"]["lightgcn/seed1"]["trials"]) == 1
    assert grids[0]["embedding_dim"] == (8, 16)
    assert grids[1]["embedding_dim"] == (first["params"]["embedding_dim"],)
    assert grids[1]["epochs"] == grids[0]["epochs"]
    assert (
        report["baselines"]["lightgcn/seed1"]["params"]["embedding_dim"]
        == grids[1]["embedding_dim"][0]
    )
    # every trial keeps its validation curve: (epoch, NDCG@20) every eval_every (2) epochs, its
    # best point the trial's validation figure
    for trial in first["trials"]:
        epochs = [epoch for epoch, _ in trial["curve"]]
        assert epochs and epochs == list(range(2, 2 * len(epochs) + 1, 2))
        assert max(value for _, value in trial["curve"]) == pytest.approx(trial["validation"])


def test_sequence_blend_chooses_its_weight_on_validation_and_tests_once(tmp_path: Path) -> None:
    out = tmp_path / "blend.json"
    argv = [*tiny_argv(tmp_path), "--quick", "--weights", "0,1,4", "--out", str(out)]
    report = sequence_blend.main(argv)
    assert json.loads(out.read_text("utf-8"))["chosen_weight"] == report["chosen_weight"]
    validation = report["blend_validation"]
    chosen = report["chosen_weight"]
    assert validation[f"{chosen:g}"] == max(validation.values())
    # weight 0 is the teacher alone: the figure its own tuning reported
    assert validation["0"] == pytest.approx(report["teacher"]["validation"]["ndcg@20"])
    rows = {row["model"]: row for row in report["rows"]}
    assert set(rows) == {"recency_ease", "sasrec", "teacher", f"teacher + {chosen:g} z(sasrec)"}
    for name, row in rows.items():
        assert 0.0 <= row["ndcg@20"] <= 1.0
        if name != "recency_ease":  # paired against the reference, the same test users
            delta = row["vs_recency_ease"]
            assert delta["low"] <= delta["difference"] <= delta["high"]
            assert delta["difference"] == pytest.approx(
                row["ndcg@20"] - rows["recency_ease"]["ndcg@20"], abs=1e-6
            )
    if chosen == 0:  # the blend is the teacher itself
        assert rows["teacher + 0 z(sasrec)"]["ndcg@20"] == rows["teacher"]["ndcg@20"]
    curve = report["sasrec"]["trials"][0]["curve"]
    assert [epoch for epoch, _ in curve] == [2, 4]  # QUICK_SASREC: 4 epochs, every 2
