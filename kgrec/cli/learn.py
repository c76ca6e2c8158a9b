"""Commands that learn and measure: ``embed``, ``train``, ``evaluate``."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kgrec.build import load_artifact
from kgrec.cli.apps import app
from kgrec.cli.common import (
    ArtifactsOption,
    ConfigOption,
    friendly_errors,
    load_cli_config,
    print_table,
    reporter,
)
from kgrec.cli.runs import artifact_digest, finish_run, prepare_run
from kgrec.config import Config
from kgrec.device import resolve_device
from kgrec.errors import KgrecError
from kgrec.eval.metrics import evaluate_ranking
from kgrec.eval.report import evaluate_models
from kgrec.faults import fault_point
from kgrec.locks import artifact_lock
from kgrec.text.features import compute_features, features_path, load_features
from kgrec.train import distributed
from kgrec.train.trainer import train

if TYPE_CHECKING:
    from torch import Tensor

    from kgrec.data.hetero import GraphArtifact

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
    config = load_cli_config(
        config_path,
        {
            "artifacts": str(artifacts) if artifacts else None,
            "features.model": model,
            "features.pooling": pooling,
            "features.device": device,
        },
    )
    lock = artifact_lock(config.artifacts_dir)  # a writer of the folder, like build-graph
    lock.acquire(hint="run kgrec embed again when it is done")
    try:
        report = compute_features(
            config.artifacts_dir,
            config.features,
            config.state_path / "text-cache",
            reporter(as_json),
        )
    finally:
        lock.release()
    summary = _plain(report)
    typer.echo(json.dumps(summary, indent=2, default=str) if as_json else _lines(summary))


@app.command("train")
@friendly_errors
def train_command(
    ctx: typer.Context,
    config_path: Path | None = ConfigOption,
    artifacts: Path | None = ArtifactsOption,
    out: Path | None = typer.Option(
        None, "--out", help="Checkpoint folder (default: <artifacts>/model)."
    ),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum GNN epochs."),
    dim: int | None = typer.Option(None, "--dim", help="GNN embedding size."),
    serve: str | None = typer.Option(
        None,
        "--serve",
        help="What the checkpoint serves: hybrid (teacher + GNN, the default), gnn or teacher.",
    ),
    kd_weight: float | None = typer.Option(
        None, "--kd-weight", help="Weight of the distillation from the teacher (0 = none)."
    ),
    no_text: bool = typer.Option(False, "--no-text", help="No text features in the GNN."),
    no_kg: bool = typer.Option(False, "--no-kg", help="No knowledge-graph edges in the GNN."),
    item_sampling: str | None = typer.Option(
        None,
        "--item-sampling",
        help="full: softmax over the whole catalogue each step; sampled: over the step's items "
        "and train.num_negatives shared negatives (catalogues too large for a full step); "
        "auto (the default): sampled when a full step would not fit in memory.",
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue an interrupted run (<out>/.training), else the last one (<out>/last.pt).",
    ),
    promote_when: str = typer.Option(
        "better",
        "--promote",
        help="better: replace <out>/model.pt only when this run beats it on validation "
        "ndcg@20 (else keep the run in <out>/candidate); always: replace it anyway.",
    ),
    nproc: int = typer.Option(
        1,
        "--nproc",
        min=1,
        help="Train the GNN data parallel in N processes on this machine (one per GPU; gloo "
        "on CPU): relaunches this command under torchrun. Several machines: run torchrun.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train kgrec: an item-item teacher, a GNN distilled from it, their blend, all chosen on
    validation, then refitted on training + validation.

    1. The teacher (EASE, item-to-next-item, RP3beta, shared KG entities, text similarity,
    each with a recency decay) is tuned on validation NDCG@20, member by member, then weighted.
    2. The GNN (item embeddings with text and KG entities; a user is the time-decayed sum of
    their items) learns to predict each user's next item (softmax over the catalogue) plus the
    teacher's ranking (distillation), with early stopping on validation NDCG@20.
    3. The served score is teacher + alpha * GNN, alpha chosen on validation.
    4. Both are refitted on training + validation with the chosen settings.

    The run trains in <out>/.training/, so the model that recommend serves (<out>/model.pt)
    is never a half-trained one, even when training is killed (continue it with --resume).
    At the end the run replaces <out>/model.pt only if it beats it on validation NDCG@20;
    otherwise it is kept in <out>/candidate/ and the output says which model is served.
    Checkpoints load with torch.load(weights_only=True); one JSON line per epoch goes to
    <out>/train_log.jsonl. Every setting is in the config's model, teacher and train sections.

    More than one device or machine: the command runs unchanged under torchrun (PyTorch
    distributed data parallel, NCCL on GPUs, gloo on CPU); --nproc N launches it so on this
    machine. Rank 0 tunes the teacher, validates and writes; the global batch stays
    train.batch_size.

    Examples:

      kgrec train

      kgrec train -c configs/ml-100k.yaml --device cuda

      kgrec train --serve teacher --out artifacts/demo/teacher   # the item-item ensemble only

      kgrec train --no-kg --no-text --out artifacts/demo/plain

      kgrec train --serve gnn --kd-weight 0   # no item x item teacher: catalogues of 40k+ items

      kgrec train --serve gnn --kd-weight 0 --item-sampling sampled   # millions of items

      kgrec train --resume              # after an interrupted run

      kgrec train --dim 64 --promote always   # serve this run even if it is worse

      kgrec train -c configs/ml-100k.yaml --nproc 2   # 2 processes (DDP) on this machine
    """
    if nproc > 1:
        raise typer.Exit(distributed.launch(nproc, ["train", *_given_options(ctx, "nproc")]))

    if promote_when not in ("better", "always"):
        raise KgrecError(f"--promote must be better or always, got {promote_when!r}")
    if serve is not None and serve not in ("hybrid", "gnn", "teacher"):
        raise KgrecError(f"--serve must be hybrid, gnn or teacher, got {serve!r}")

    config = load_cli_config(
        config_path,
        {
            "artifacts": str(artifacts) if artifacts else None,
            "train.device": device,
            "train.epochs": epochs,
            "train.serve": serve,
            "train.kd_weight": kd_weight,
            "train.seed": seed,
            "train.item_sampling": item_sampling,
            "model.embedding_dim": dim,
            "model.use_text": False if no_text else None,
            "model.use_kg": False if no_kg else None,
        },
    )
    progress = reporter(as_json)
    artifact = _artifact(config)
    trained_on = artifact_digest(config.artifacts_dir)
    x_dict = _features(config)
    target = out or config.artifacts_dir / MODEL_DIR
    distributed.setup(resolve_device(config.train.device))  # torchrun's ranks: rank 0 writes
    main = distributed.is_main()
    run = distributed.broadcast(prepare_run(target, config, resume, progress) if main else None)

    def validate(score_fn: Any) -> dict[str, float]:
        values = evaluate_ranking(score_fn, artifact, "val", ks=(20,), batch_size=1024)
        return dict(values.values)

    result = train(
        artifact,
        x_dict,
        config,
        validate=validate,
        reporter=progress,
        out=run.folder,
        resume=run.resume_from,
    )
    fault_point("trained")
    if not main:
        return
    promotion = finish_run(run, target, config, trained_on, always=promote_when == "always")
    summary = {
        "checkpoint": str(promotion.served if promotion.promoted else promotion.kept),
        "promoted": promotion.promoted,
        "served_model": str(promotion.served),
        "promotion": promotion.reason,
        "serves": result.kind,
        "alpha": None if result.kind == "gnn" else result.alpha,  # the GNN alone: no blend
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 2),
        "val": {f"ndcg@20 {k}": v for k, v in result.validation.items()},
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
    if split not in ("val", "test"):
        raise typer.BadParameter("choose val or test", param_hint="--split")
    config = load_cli_config(config_path, {"artifacts": str(artifacts) if artifacts else None})
    artifact = _artifact(config)
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


def _given_options(ctx: typer.Context, *leave_out: str) -> list[str]:
    """The options of this call that differ from their defaults, as command-line words."""
    words: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.param_type_name != "option" or param.name in leave_out:
            continue
        if value is None or value == param.default:
            continue
        flag = getattr(param, "is_flag", False)
        words += [param.opts[0]] if flag else [param.opts[0], str(value)]
    return words


def _artifact(config: Config) -> GraphArtifact:
    return load_artifact(config.artifacts_dir)


def _features(config: Config) -> dict[str, Tensor] | None:
    """Text features when the artifact has them; an error when they are needed and absent."""
    needs = config.model.use_text
    if not features_path(config.artifacts_dir).exists():
        if needs:
            raise KgrecError(
                f"no text features in {config.artifacts_dir}: run `kgrec embed` first "
                "(or train with --no-text)"
            )
        return None
    x_dict, _ = load_features(config.artifacts_dir)
    return x_dict


def _plain(report: Any) -> dict[str, Any]:
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
    keys = ["recall@20", "ndcg@20", "hit@20", "precision@20", "mrr", "coverage@20", "ogb_mrr"]
    table = [
        [row["model"], *[f"{row['metrics'][k]:.4f}" if k in row["metrics"] else "-" for k in keys]]
        for row in rows
    ]
    title = f"{split} split, full ranking over all items (seen items masked)"
    print_table(["model", *keys], table, title, right=keys)
