"""``kgrec recommend --all --record`` end to end: customer reasons in the database, read back
by ``why_recommended`` (readable columns) and ``kgrec explain --served``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from kgrec.cli import app
from kgrec.store.server import FalkorDBServer
from tests.faults.helpers import write_config

runner = CliRunner()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The demo in its own database, a 2-epoch model, every user's top 3 recorded."""
    root = tmp_path_factory.mktemp("record-cli")
    home = root / "home"
    config = write_config(root / "c.yaml", home, root / "art", "g")
    env = {"KGREC_HOME": str(home)}
    steps = [
        ["build-graph", "-c", str(config)],
        ["train", "-c", str(config), "--no-text", "--kd-weight", "0", "--epochs", "2"],
    ]
    for step in steps:
        result = runner.invoke(app, step, env=env)
        assert result.exit_code == 0, result.output
    served = runner.invoke(
        app, ["recommend", "-c", str(config), "--all", "--record", "-k", "3", "-f", "json"], env=env
    )
    assert served.exit_code == 0, served.output
    yield {"config": config, "env": env, "served": served}
    FalkorDBServer(home).stop()


def invoke(recorded: dict[str, object], *args: str):  # type: ignore[no-untyped-def]
    env = recorded["env"]
    assert isinstance(env, dict)
    return runner.invoke(app, [*args, "-c", str(recorded["config"])], env=env)


def test_every_user_is_recorded_with_a_summary(recorded: dict[str, object]) -> None:
    served = recorded["served"]
    lines = [json.loads(line) for line in served.stdout.splitlines()]  # type: ignore[attr-defined]
    assert len(lines) == 400 and all(len(x["recommendations"]) == 3 for x in lines)
    summary = served.stderr.strip().splitlines()[-1]  # type: ignore[attr-defined]
    assert re.fullmatch(
        r"recorded 400 lists of 400 users \([\d,]+ reasons\) in [\d.]+ s \([\d.]+ ms per user\)",
        summary,
    ), summary
    count = "MATCH ()-[r:RECOMMENDED]->() RETURN count(r) AS n"
    assert json.loads(invoke(recorded, "cypher", "run", count, "-f", "json").stdout) == [
        {"n": 1200}
    ]


def test_why_recommended_reads_the_reasons_as_columns(recorded: dict[str, object]) -> None:
    served = recorded["served"]
    first = json.loads(served.stdout.splitlines()[0])  # type: ignore[attr-defined]
    user, rec = first["user_id"], first["recommendations"][0]
    args = ["cypher", "run", "why_recommended", "-p", f"user={user}", "-p"]
    rows = json.loads(invoke(recorded, *args, f"item={rec['item_id']}", "-f", "json").stdout)
    assert rows and all(r["rank"] == 1 and r["title"] == rec["title"] for r in rows)
    assert all(r["reason"].startswith("Because you liked *") for r in rows)
    shares = [r["share"] for r in rows]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9
    served_view = invoke(
        recorded, "explain", "--user", user, "--item", rec["item_id"], "--served", "--staff"
    )
    assert served_view.exit_code == 0, served_view.output
    for row in rows:
        assert row["reason"] in served_view.stdout
    assert "-[:INTERACTED]->" in served_view.stdout  # staff also see the path


def test_no_recorded_reason_names_another_user(recorded: dict[str, object]) -> None:
    query = "MATCH (u:User)-[r:RECOMMENDED]->() RETURN u.id AS user, r.reasons AS reasons"
    rows = json.loads(invoke(recorded, "cypher", "run", query, "-f", "json").stdout)
    users = re.compile(r"\bu\d{4}\b")
    reasons = [(r["user"], reason) for r in rows for reason in r["reasons"]]
    assert reasons and not [x for x in reasons if users.search(x[1])]
