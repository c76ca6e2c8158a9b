"""Commands that learn and measure: ``embed``, ``train``, ``evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from kgrec.cli.apps import app
from kgrec.cli.common import (
    ArtifactsOption,
    ConfigOption,
    friendly_errors,
    load_cli_config,
)

MODEL_DIR = "model"
"""Default checkpoint folder inside the artifacts folder."""


@app.command("embed")
@friendly_errors
def embed_command(
    config_path: Path | None = ConfigOption,
    artifacts: Path | None = ArtifactsOption,
    model: str | None = typer.Option(
        None, "--model", help="'default' (all-MiniLM-L6-v2), a Hugging Face id or a local path."
    ),
    pooling: str | None = typer.Option(None, "--pooling", help="mean, cls or last."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Compute language-model text features for every node (cached by text hash).

    Writes features.pt into the artifact folder; training on another machine then needs no
    model weights. Texts already embedded with the same model are read from the cache.

    Examples:

      kgrec embed

      kgrec embed -c configs/ml-100k.yaml --device cuda

      kgrec embed --model intfloat/e5-small-v2 --pooling mean
    """
    from kgrec.progress import Reporter, RichReporter
    from kgrec.text.features import compute_features

    config = load_cli_config(
        config_path,
        {
            "artifacts": str(artifacts) if artifacts else None,
            "features.model": model,
            "features.pooling": pooling,
            "features.device": device,
        },
    )
    reporter = Reporter() if as_json else RichReporter()
    report = compute_features(
        config.artifacts_dir, config.features, config.state_path / "text-cache", reporter
    )
    summary = _plain(report)
    typer.echo(json.dumps(summary, indent=2, default=str) if as_json else _lines(summary))


@app.command("train")
@friendly_errors
def train_command(
    config_path: Path | None = ConfigOption,
    artifacts: Path | None = ArtifactsOption,
    out: Path | None = typer.Option(
        None, "--out", help="Checkpoint folder (default: <artifacts>/model)."
    ),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum epochs."),
    dim: int | None = typer.Option(None, "--dim", help="Embedding size."),
    layers: int | None = typer.Option(None, "--layers", help="Propagation layers."),
    teacher: str | None = typer.Option(
        None, "--teacher", help="Distillation teacher: ease, text, none, or a checkpoint path."
    ),
    kd_weight: float | None = typer.Option(None, "--kd-weight", help="Weight of the KD loss."),
    no_text: bool = typer.Option(False, "--no-text", help="Random init instead of text."),
    no_kg: bool = typer.Option(False, "--no-kg", help="Ignore the knowledge-graph edges."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    resume: bool = typer.Option(False, "--resume", help="Continue from <out>/last.pt."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train the GNN (BPR + knowledge distillation), keeping the best validation checkpoint.

    Early stopping on validation NDCG@20; the best model goes to <out>/model.pt (loadable with
    torch.load(weights_only=True)), one JSON line per epoch to <out>/train_log.jsonl.

    Examples:

      kgrec train

      kgrec train -c configs/ml-100k.yaml --device cuda

      kgrec train --dim 256 --layers 3 --out artifacts/demo/teacher

      kgrec train --dim 32 --teacher artifacts/demo/teacher/model.pt --out artifacts/demo/student
    """
    from kgrec.build import load_artifact
    from kgrec.progress import Reporter, RichReporter
    from kgrec.train.trainer import train

    config = load_cli_config(
        config_path,
        {
            "artifacts": str(artifacts) if artifacts else None,
            "train.device": device,
            "train.epochs": epochs,
            "train.kd_teacher": teacher,
            "train.kd_weight": kd_weight,
            "train.seed": seed,
            "model.embedding_dim": dim,
            "model.num_layers": layers,
            "model.use_text": False if no_text else None,
            "model.use_kg": False if no_kg else None,
        },
    )
    reporter = Reporter() if as_json else RichReporter()
    artifact = load_artifact(config.artifacts_dir)
    x_dict = _features(config, reporter)
    target = out or config.artifacts_dir / MODEL_DIR
    result = train(
        artifact,
        x_dict,
        config.model,
        config.train,
        reporter=reporter,
        out=target,
        resume=target if resume else None,
    )
    summary = {
        "checkpoint": str(result.checkpoint),
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 2),
        "val": result.best_metrics,
    }
    typer.echo(json.dumps(summary, indent=2) if as_json else _lines(summary))


@app.command("evaluate")
@friendly_errors
def evaluate_command(
    config_path: Path | None = ConfigOption,
    artifacts: Path | None = ArtifactsOption,
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Model to evaluate (default: <artifacts>/model/model.pt)."
    ),
    split: str = typer.Option("test", "--split", help="val or test."),
    baselines: str = typer.Option(
        "",
        "--baselines",
        help="Also evaluate (default parameters, refitted on train+val for test): comma list "
        "of popular, ease, recency_ease, itemknn, recency_itemknn, rp3beta, recency_rp3beta, "
        "lightgcn. Tuned baselines: benchmarks/quality.py.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Full-ranking metrics (seen items masked) and OGB sampled-negative MRR/Hits.

    Recall, NDCG, Hit and Precision at 10/20/50, MRR and item coverage, on the test split by
    default; baselines are fitted on the same training split and scored by the same code.

    Examples:

      kgrec evaluate

      kgrec evaluate --split val --json

      kgrec evaluate --baselines popular,ease,lightgcn
    """
    from kgrec.build import load_artifact
    from kgrec.eval.report import evaluate_models

    if split not in ("val", "test"):
        raise typer.BadParameter("choose val or test", param_hint="--split")
    config = load_cli_config(config_path, {"artifacts": str(artifacts) if artifacts else None})
    artifact = load_artifact(config.artifacts_dir)
    names = [b.strip() for b in baselines.split(",") if b.strip()]
    rows = evaluate_models(
        artifact,
        checkpoint or config.artifacts_dir / MODEL_DIR / "model.pt",
        split=split,
        baselines=names,
        eval_config=config.eval,
    )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _print_metrics(rows, split)


def _features(config: Any, reporter: Any) -> Any:
    """Text features when the artifact has them; an error when they are needed and absent."""
    from kgrec.text.features import features_path, load_features

    needs = config.model.use_text or config.train.kd_teacher == "text"
    if not features_path(config.artifacts_dir).exists():
        if needs:
            from kgrec.errors import KgrecError

            raise KgrecError(
                f"no text features in {config.artifacts_dir}: run `kgrec embed` first "
                "(or train with --no-text --teacher none)"
            )
        return None
    x_dict, _ = load_features(config.artifacts_dir)
    return x_dict


def _plain(report: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(report) and not isinstance(report, type):
        return asdict(report)
    return dict(report)


def _lines(summary: dict[str, Any]) -> str:
    out = []
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items()
            )
        out.append(f"{key}: {value}")
    return "\n".join(out)


def _print_metrics(rows: list[dict[str, Any]], split: str) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = ["recall@20", "ndcg@20", "hit@20", "precision@20", "mrr", "coverage@20", "ogb_mrr"]
    table = Table(title=f"{split} split, full ranking over all items (seen items masked)")
    table.add_column("model")
    for key in keys:
        table.add_column(key, justify="right")
    for row in rows:
        metrics = row["metrics"]
        table.add_row(row["model"], *[f"{metrics[k]:.4f}" if k in metrics else "-" for k in keys])
    Console().print(table)
