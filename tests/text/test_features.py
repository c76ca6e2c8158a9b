"""Text features: templates, the embedding cache, node texts and ``features.pt`` (fast: the
hashing encoder stands in for the language model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from kgrec.build import build_graph
from kgrec.config import FeatureConfig, load_config
from kgrec.data.mapping import IdMap
from kgrec.errors import KgrecError
from kgrec.files import CHECKSUM
from kgrec.text.cache import EmbeddingCache, embed_with_cache
from kgrec.text.encoder import HashingEncoder
from kgrec.text.features import compute_features, features_path, load_features, node_texts
from kgrec.text.templates import DEFAULT_TEMPLATES, Template, attribute_template, render

REPO = Path(__file__).resolve().parents[2]
ITEM = DEFAULT_TEMPLATES["item"]
USER = DEFAULT_TEMPLATES["user"]


# -- templates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"title": "Heat", "year": 1995.0, "genres": "Crime|Drama", "tags": ["heist", None]},
            "Heat (1995). Genres: Crime, Drama. Tags: heist.",
        ),
        ({"title": "Heat", "year": None, "genres": float("nan")}, "Heat."),
        ({"title": "Heat", "year": "nan", "genres": "None", "tags": "  "}, "Heat."),
        (
            {"title": "Heat", "year": pd.NA, "description": "A heist.  In L.A."},
            "Heat. A heist. In L.A.",
        ),
        (
            {"title": "Heat", "description": "Who did it?", "neighbours": "by: Mann"},
            "Heat. Who did it? by: Mann.",
        ),
        ({"year": 1995, "genres": "Crime"}, "(1995). Genres: Crime."),
        ({}, ""),
    ],
)
def test_item_template_drops_missing_fields_cleanly(row: dict[str, object], expected: str) -> None:
    assert render(ITEM, row) == expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"age": 24, "occupation": "technician", "gender": "M"},
            "age 24, gender M, occupation technician",
        ),
        ({"age": None, "occupation": "technician", "gender": ""}, "occupation technician"),
        ({"age": 24.0, "occupation": "nan"}, "age 24"),
        ({"zip_code": "85711"}, ""),
    ],
)
def test_user_template_has_no_dangling_separators(row: dict[str, object], expected: str) -> None:
    assert render(USER, row) == expected


def test_plain_string_templates_work_sentence_by_sentence() -> None:
    template = "{title} ({year}). Genres: {genres}. Rated {rating:.1f}/5. Enjoy!"
    row = {"title": "Heat", "year": 1995, "genres": "Crime|Drama", "rating": 4.25}
    assert render(template, row) == "Heat (1995). Genres: Crime, Drama. Rated 4.2/5. Enjoy!"
    assert render(template, {"title": "Heat"}) == "Heat. Enjoy!"
    assert render("{a}{{literal}}", {"a": "x"}) == "x{literal}"


def test_values_are_never_rewritten_by_the_cleanup() -> None:
    template = Template(("{title}", "{description}"))
    row = {"title": "Se7en (1995)", "description": "Wait... what , really ..?"}
    assert render(template, row) == "Se7en (1995). Wait... what , really ..?"


def test_attribute_template_names_every_column() -> None:
    template = attribute_template(["country", "zip_code"])
    assert template.fields == {"country", "zip_code"}
    assert render(template, {"country": "FR", "zip_code": None}) == "country FR"


# -- cache -------------------------------------------------------------------------------


def test_cache_counts_hits_and_misses_and_returns_identical_vectors(tmp_path: Path) -> None:
    encoder = HashingEncoder(16)
    texts = ["heat", "alien", "heat", "up"]
    seen: list[int] = []
    first, stats = embed_with_cache(encoder, texts, tmp_path, progress=seen.append)
    assert (stats.hits, stats.misses) == (0, 3) and sum(seen) == 3  # distinct texts
    assert first.shape == (4, 16) and torch.equal(first[0], first[2])
    assert torch.allclose(first.norm(dim=1), torch.ones(4))
    again, stats = embed_with_cache(encoder, ["new", *texts], EmbeddingCache(tmp_path))
    assert (stats.hits, stats.misses) == (3, 1) and (stats.reused, stats.computed) == (3, 1)
    assert torch.equal(again[1:], first)
    assert torch.equal(again[0], encoder.encode(["new"])[0])
    _, stats = embed_with_cache(encoder, texts, tmp_path)
    assert (stats.hits, stats.misses) == (3, 0)


def test_cache_is_per_model_and_survives_a_corrupt_file(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    embed_with_cache(HashingEncoder(8), ["a", "b"], cache)
    _, stats = embed_with_cache(HashingEncoder(4), ["a", "b"], cache)
    assert stats.misses == 2  # another model id: nothing shared
    assert len(list(tmp_path.glob("*.pt"))) == 2
    cache.file("hashing-8").write_bytes(b"not a torch file")
    vectors, stats = embed_with_cache(HashingEncoder(8), ["a", "b"], cache)
    assert stats.misses == 2 and vectors.shape == (2, 8)
    assert embed_with_cache(HashingEncoder(8), ["a"], cache)[1].hits == 1  # rewritten
    assert not list(tmp_path.glob(".*tmp*"))


def test_no_cache_and_no_texts() -> None:
    vectors, stats = embed_with_cache(HashingEncoder(8), [], None)
    assert vectors.shape == (0, 8) and (stats.hits, stats.misses) == (0, 0)
    vectors, stats = embed_with_cache(HashingEncoder(8), ["a", "a"], None)
    assert vectors.shape == (2, 8) and stats.misses == 1


# -- node texts and features.pt ------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo graph built without the database (never modified: tests copy it)."""
    folder = tmp_path_factory.mktemp("text-features") / "artifacts"
    overrides = {
        "dataset.path": str(REPO / "data" / "demo"),
        "artifacts": str(folder),
        "store.enabled": False,
    }
    build_graph(load_config(None, overrides))
    return folder


@pytest.fixture
def artifacts(demo: Path, tmp_path: Path) -> Path:
    """A private copy of the demo artifacts."""
    return Path(shutil.copytree(demo, tmp_path / "artifacts"))


def table(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(folder / "tables" / f"{name}.parquet")


def test_node_texts_follow_the_id_maps(demo: Path) -> None:
    texts = node_texts(demo)
    ids = IdMap.load(demo / "id_maps.parquet").ids
    assert set(texts) == set(ids) == {"user", "item", "genre", "actor", "director", "country"}
    assert {t: len(v) for t, v in texts.items()} == {t: len(v) for t, v in ids.items()}
    items = table(demo, "items").set_index("item_id")
    for index in (0, 123, len(ids["item"]) - 1):
        item = items.loc[ids["item"][index]]
        assert texts["item"][index].startswith(f"{item['title']} ({item['year']}). Genres: ")
        assert item["description"] in texts["item"][index]
    assert "directed by: " in texts["item"][0] and "has genre" not in texts["item"][0]
    users = table(demo, "users").set_index("user_id")
    user = users.loc[ids["user"][7]]
    assert texts["user"][7] == f"age {user['age']}, occupation {user['occupation']}"
    genre = ids["genre"][0]
    assert texts["genre"][0] == f"{genre.split(':')[1].title()} (genre)"
    flat = [t for v in texts.values() for t in v]
    assert all(t and "nan" not in t and "None" not in t and ".." not in t for t in flat)


def test_users_without_attributes_get_no_features(artifacts: Path) -> None:
    users = table(artifacts, "users")[["user_id"]]
    users.to_parquet(artifacts / "tables" / "users.parquet", index=False)
    assert "user" not in node_texts(artifacts)
    compute_features(artifacts, FeatureConfig(), None, encoder=HashingEncoder(8))
    x_dict, _ = load_features(artifacts)
    assert "user" not in x_dict and x_dict["item"].shape == (400, 8)


def test_year_already_in_the_title_is_not_repeated_and_empty_texts_are_no_text(
    artifacts: Path,
) -> None:
    items = table(artifacts, "items")
    items.loc[0, "title"] = f"{items.loc[0, 'title']} ({items.loc[0, 'year']})"
    items.to_parquet(artifacts / "tables" / "items.parquet", index=False)
    users = table(artifacts, "users").assign(age=None, occupation=None)
    users.to_parquet(artifacts / "tables" / "users.parquet", index=False)
    texts = node_texts(artifacts)
    index = list(IdMap.load(artifacts / "id_maps.parquet").ids["item"]).index(
        items.loc[0, "item_id"]
    )
    assert texts["item"][index].startswith(f"{items.loc[0, 'title']}. Genres:")
    assert set(texts["user"]) == {""}  # nothing to say: no text, the type embedding instead
    report = compute_features(artifacts, FeatureConfig(), None, encoder=HashingEncoder(8))
    x_dict, meta = load_features(artifacts)
    assert report.with_text["user"] == 0 and not meta["has_text"]["user"].any()
    assert torch.count_nonzero(x_dict["user"]) == 0


def test_entities_without_name_or_description_get_no_text(artifacts: Path) -> None:
    entities = table(artifacts, "entities")
    directors = entities.index[entities["type"] == "director"]
    unnamed, described = directors[:5], directors[5]
    entities.loc[unnamed, "name"] = None
    entities.loc[directors[6], "name"] = entities.loc[directors[6], "entity_id"]  # id as name
    entities.loc[described, "name"] = None
    entities["description"] = None
    entities.loc[described, "description"] = "A director of westerns."
    entities.to_parquet(artifacts / "tables" / "entities.parquet", index=False)
    wordless = set(entities.loc[[*unnamed, directors[6]], "entity_id"])

    texts = node_texts(artifacts)
    ids = IdMap.load(artifacts / "id_maps.parquet").ids
    by_id = dict(zip(ids["director"], texts["director"], strict=True))
    assert {i for i, t in by_id.items() if not t} == wordless
    described_id = entities.loc[described, "entity_id"]
    assert by_id[described_id] == f"{described_id} (director). A director of westerns."
    assert not any(i in t for t in texts["item"] for i in wordless)  # not named in items

    encoder = HashingEncoder(8)
    report = compute_features(artifacts, FeatureConfig(), None, encoder=encoder)
    x_dict, meta = load_features(artifacts)
    mask = meta["has_text"]["director"]
    assert mask.dtype == torch.bool and mask.tolist() == [bool(t) for t in texts["director"]]
    assert report.with_text["director"] == len(ids["director"]) - len(wordless)
    assert torch.count_nonzero(x_dict["director"][~mask]) == 0
    kept = [t for t in texts["director"] if t]
    assert torch.allclose(x_dict["director"][mask], encoder.encode(kept))
    assert report.computed == len({t for v in texts.values() for t in v if t})


def test_format_1_features_load_with_every_row_marked_as_text(artifacts: Path) -> None:
    compute_features(artifacts, FeatureConfig(), None, encoder=HashingEncoder(8))
    payload = torch.load(features_path(artifacts), weights_only=True)
    payload["format"] = 1
    del payload["has_text"]
    payload.pop(CHECKSUM, None)  # format 1 files carried no checksum
    torch.save(payload, features_path(artifacts))
    x_dict, meta = load_features(artifacts)
    assert all(
        meta["has_text"][t].all() and len(meta["has_text"][t]) == len(x) for t, x in x_dict.items()
    )
    payload["format"] = 9
    torch.save(payload, features_path(artifacts))
    with pytest.raises(KgrecError, match="format 9"):
        load_features(artifacts)


def test_features_round_trip_reuse_the_cache(artifacts: Path, tmp_path: Path) -> None:
    encoder = HashingEncoder(8)
    report = compute_features(artifacts, FeatureConfig(), tmp_path / "cache", encoder=encoder)
    texts = node_texts(artifacts)
    distinct = len({t for v in texts.values() for t in v if t})
    assert (report.computed, report.reused, report.embedding_dim) == (distinct, 0, 8)
    assert report.texts == {t: len(v) for t, v in texts.items()}
    assert report.examples["item"] == texts["item"][0]
    x_dict, meta = load_features(artifacts)
    assert {t: tuple(x.shape) for t, x in x_dict.items()} == {
        t: (len(v), 8) for t, v in texts.items()
    }
    assert torch.equal(x_dict["director"], encoder.encode(texts["director"]))
    assert meta["model_id"] == "hashing-8" and meta["embedding_dim"] == 8
    assert meta["num_nodes"] == report.texts and "x_dict" not in meta
    assert not [p.name for p in artifacts.iterdir() if "tmp" in p.name]

    again = compute_features(artifacts, FeatureConfig(), tmp_path / "cache", encoder=encoder)
    assert (again.computed, again.reused) == (0, distinct)
    assert all(torch.equal(x, load_features(artifacts)[0][t]) for t, x in x_dict.items())


def test_missing_and_unreadable_features_are_clear_errors(artifacts: Path) -> None:
    with pytest.raises(KgrecError, match="run `kgrec embed` first"):
        load_features(artifacts)
    features_path(artifacts).write_bytes(b"garbage")
    with pytest.raises(KgrecError, match="unreadable"):
        load_features(artifacts)


def test_stale_features_are_refused(artifacts: Path) -> None:
    compute_features(artifacts, FeatureConfig(), None, encoder=HashingEncoder(8))
    id_maps = pd.read_parquet(artifacts / "id_maps.parquet")

    # same counts, but two actors swapped places (a rebuild from edited data)
    actors = id_maps.index[id_maps["node_type"] == "actor"][:2]
    id_maps.loc[actors, "id"] = id_maps.loc[actors[::-1], "id"].to_numpy()
    id_maps.to_parquet(artifacts / "id_maps.parquet", index=False)
    with pytest.raises(KgrecError, match="stale: the nodes of actor changed"):
        load_features(artifacts)

    # one item fewer
    compute_features(artifacts, FeatureConfig(), None, encoder=HashingEncoder(8))
    last = id_maps[id_maps["node_type"] == "item"]["index"].idxmax()
    id_maps.drop(index=last).to_parquet(artifacts / "id_maps.parquet", index=False)
    with pytest.raises(KgrecError, match=r"stale.*item.*\(400, 399\).*kgrec embed"):
        load_features(artifacts)
