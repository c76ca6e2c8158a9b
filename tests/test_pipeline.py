"""The whole journey through the CLI on the demo data: build -> embed -> train -> evaluate ->
recommend -> explain, with the real text model and the real embedded database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kgrec.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def journey(falkordb_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    artifacts = tmp_path_factory.mktemp("journey") / "artifacts"
    env = {"KGREC_HOME": str(falkordb_home)}
    a = ["--artifacts", str(artifacts)]
    steps = {
        "build": runner.invoke(app, ["build-graph", *a, "--json"], env=env),
        "embed": runner.invoke(app, ["embed", *a, "--json"], env=env),
        "train": runner.invoke(app, ["train", *a, "--epochs", "3", "--json"], env=env),
        "evaluate": runner.invoke(
            app, ["evaluate", *a, "--baselines", "popular", "--json"], env=env
        ),
    }
    for name, result in steps.items():
        assert result.exit_code == 0, f"{name}: {result.output}"
    return {"artifacts": artifacts, "env": env, **steps}


def test_embed_and_train_outputs(journey: dict[str, object]) -> None:
    embed = json.loads(journey["embed"].output)  # type: ignore[attr-defined]
    assert embed["embedding_dim"] == 384
    assert embed["texts"]["item"] == 400
    trained = json.loads(journey["train"].output)  # type: ignore[attr-defined]
    # 3 epochs chosen on validation, then the GNN's refit for the best number of them (none
    # when validation blends it at alpha 0: the teacher is served and the GNN dropped)
    assert trained["serves"] in ("hybrid", "teacher") and trained["promoted"]
    refit = trained["best_epoch"] + 1 if trained["serves"] == "hybrid" else 0
    assert trained["epochs_run"] == 3 + refit
    assert Path(trained["checkpoint"]).exists()
    log = Path(trained["checkpoint"]).parent / "train_log.jsonl"
    stages = [json.loads(line)["stage"] for line in log.read_text().splitlines()]
    assert stages == ["validation"] * 3 + ["refit"] * refit


def test_evaluate_reports_kgrec_and_the_baseline(journey: dict[str, object]) -> None:
    rows = json.loads(journey["evaluate"].output)  # type: ignore[attr-defined]
    assert [r["model"] for r in rows] == ["kgrec", "popular"]
    for row in rows:
        metrics = row["metrics"]
        assert 0.0 <= metrics["ndcg@20"] <= metrics["recall@20"] <= 1.0
        assert "ogb_mrr" in metrics
    assert rows[0]["num_users"] == 400


def test_recommend_then_explain(journey: dict[str, object]) -> None:
    a = ["--artifacts", str(journey["artifacts"])]
    env = journey["env"]
    rec = runner.invoke(app, ["recommend", *a, "--user", "u0001", "-k", "5", "-f", "json"], env=env)
    assert rec.exit_code == 0, rec.output
    items = [r["item_id"] for r in json.loads(rec.output)["recommendations"]]
    assert len(items) == 5
    explained = runner.invoke(
        app, ["explain", *a, "--user", "u0001", "--item", items[0], "-f", "json"], env=env
    )
    assert explained.exit_code == 0, explained.output
    assert "Because you" in explained.output


def test_unknown_user_is_a_clear_error(journey: dict[str, object]) -> None:
    a = ["--artifacts", str(journey["artifacts"])]
    result = runner.invoke(app, ["recommend", *a, "--user", "nobody"], env=journey["env"])
    assert result.exit_code != 0
    assert "nobody" in result.output
    assert "Traceback" not in result.output


def test_profile_cold_start_follows_the_text(journey: dict[str, object]) -> None:
    import pandas as pd

    from kgrec.config import FeatureConfig
    from kgrec.text.search import items_like

    demo = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "demo" / "items.csv")
    artifacts = Path(str(journey["artifacts"]))
    seeds = items_like("a dusty western about a lone rider", artifacts, FeatureConfig())
    genres = demo.set_index("item_id").loc[seeds, "genres"]
    assert genres.str.contains("Western").all()
    a = ["--artifacts", str(journey["artifacts"])]
    result = runner.invoke(
        app,
        [
            "recommend",
            *a,
            "--profile",
            "a dusty western about a lone rider",
            "-k",
            "5",
            "-f",
            "json",
        ],
        env=journey["env"],
    )
    assert result.exit_code == 0, result.output
    items = [r["item_id"] for r in json.loads(result.output)["recommendations"]]
    assert len(items) == 5
    assert not set(items) & set(seeds)  # the seeds stand in for the user's history
    empty = runner.invoke(app, ["recommend", *a, "--profile", " "], env=journey["env"])
    assert empty.exit_code != 0
    assert "--profile is empty" in empty.output
