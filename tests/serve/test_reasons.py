"""Customer-facing reasons: only items the user liked, no other user identified, named
entities first; the staff view keeps every contribution."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from kgrec.serve.bundle import Bundle
from kgrec.serve.export import liked_mask, open_bundle
from kgrec.serve.paths import Explainer
from kgrec.serve.reasons import is_latin, liked_keys, readable_names
from kgrec.serve.recommend import Recommender
from kgrec.serve.sentences import relation_phrase
from tests.conftest import TrainedModel

USERS = ("u0001", "u0002", "u0010", "u0100", "u0200", "u0399")


@pytest.fixture(scope="module")
def bundle(demo_model: TrainedModel) -> Bundle:
    return open_bundle(demo_model.checkpoint, demo_model.artifacts)


@pytest.fixture(scope="module")
def explainer(bundle: Bundle) -> Explainer:
    return Explainer(bundle)


@pytest.fixture(scope="module")
def ratings(demo_model: TrainedModel) -> pd.DataFrame:
    """Every interaction with ``liked``: rating at or above the user's own mean."""
    frame = pd.read_parquet(demo_model.artifacts / "tables" / "interactions.parquet")
    mean = frame.groupby("user_id")["rating"].transform("mean")
    return frame.assign(liked=frame["rating"] >= mean)


def served(explainer: Explainer, k: int = 10) -> list[tuple[str, str]]:
    recommender = Recommender(explainer.bundle)
    return [(u, r.item_id) for u in USERS for r in recommender.recommend(u, k=k)]


def test_liked_mask_is_rating_at_or_above_the_users_mean() -> None:
    users = np.asarray([0, 0, 0, 1, 1, 2])
    rating = np.asarray([5.0, 1.0, 3.0, 2.0, np.nan, np.nan])
    assert liked_mask(users, rating, 3).tolist() == [True, False, True, True, True, True]
    assert liked_mask(users, np.full(6, np.nan), 3).all()  # no ratings: all liked


def test_the_bundle_knows_which_history_items_were_liked(
    bundle: Bundle, ratings: pd.DataFrame
) -> None:
    assert 0 < bundle.history_liked.mean() < 1  # the demo has ratings
    for user in USERS:
        u = bundle.user_index(user)
        assert u is not None
        items, _ = bundle.history(u)
        got = dict(zip((bundle.item_ids[i] for i in items), bundle.liked(u), strict=True))
        mine = ratings[ratings["user_id"] == user]
        assert got == dict(zip(mine["item_id"], mine["liked"], strict=True))


def test_customer_reasons_cite_only_liked_items(
    explainer: Explainer, ratings: pd.DataFrame
) -> None:
    liked = set(ratings.loc[ratings["liked"], ["user_id", "item_id"]].itertuples(index=False))
    disliked_in_staff_view = 0
    for user, item in served(explainer):
        paths = explainer.explain(user, item, limit=3)
        assert paths, (user, item)
        for p in paths:
            assert p.liked and (user, p.nodes[1].id) in liked, p.sentence
            assert p.sentence.startswith(f"Because you liked *{p.nodes[1].name}*")
        shares = [p.share for p in paths]
        assert shares == sorted(shares, reverse=True)  # still by contribution
        staff = explainer.explain(user, item, limit=50, staff=True)
        disliked_in_staff_view += sum(not p.liked for p in staff)
        assert {p.nodes[1].id for p in paths} <= {p.nodes[1].id for p in staff}
        for p in staff:
            assert p.liked == ((user, p.nodes[1].id) in liked)
            assert ("below your average" in p.sentence) == (not p.liked)
    assert disliked_in_staff_view  # staff still see what the customer is not shown


def test_no_other_user_is_identified(explainer: Explainer, bundle: Bundle) -> None:
    ids = re.compile("|".join(re.escape(u) for u in bundle.user_ids))
    collaborative = 0
    for user, item in served(explainer):
        for p in explainer.explain(user, item, limit=5):
            assert not ids.search(p.sentence.replace(user, "")), p.sentence
            others = [n for n in p.nodes[1:] if n.type == "user"]
            assert all(n.id == "" and n.index == -1 for n in others)
            if p.kind == "collaborative":
                collaborative += 1
                assert "people who" in p.sentence
    staff = Explainer(bundle)
    for user, item in served(staff, k=3):
        for p in staff.explain(user, item, limit=50, staff=True):
            assert all(n.id == "" for n in p.nodes[1:] if n.type == "user")


def test_explain_many_is_explain_per_item(explainer: Explainer) -> None:
    pairs = served(explainer, k=5)
    for user in USERS[:3]:
        items = [i for u, i in pairs if u == user]
        for staff in (False, True):
            many = explainer.explain_many(user, items, limit=3, staff=staff)
            one = [explainer.explain(user, i, 3, staff) for i in items]
            assert [[(p.nodes, p.edges, p.sentence, p.liked) for p in ps] for ps in many] == [
                [(p.nodes, p.edges, p.sentence, p.liked) for p in ps] for ps in one
            ]
            flat = [p.contribution for ps in many for p in ps]
            assert flat == pytest.approx([p.contribution for ps in one for p in ps])


def test_the_scorers_contributions_for_many_targets_equal_one_at_a_time(bundle: Bundle) -> None:
    scorer = bundle.scorer
    assert scorer is not None
    for user in range(0, bundle.num_users, 50):
        items, ages = bundle.history(user)
        targets = np.asarray([0, 7, user % bundle.num_items, bundle.num_items - 1])
        many = scorer.contributions_many(items, ages, targets)
        for k, target in enumerate(targets.tolist()):
            one = scorer.contributions(items, ages, target).per_item
            np.testing.assert_allclose(many[:, k], one, atol=1e-9)


def test_readable_names_are_named_in_the_catalogues_script() -> None:
    titles = ["Toy Story (1995)", "Amélie (2001)", "Heat (1995)"]
    ids = ["actor:m.1", "actor:m.2", "actor:m.3", "actor:m.4", "actor:m.5"]
    names = ["Tom Hanks", "actor:m.2", "アニー・ポッツ", "Gérard Depardieu", " "]
    assert readable_names(ids, names, titles).tolist() == [True, False, False, True, False]
    assert readable_names(ids, names, ["トイ・ストーリー"] * 3).tolist()[2]  # a Japanese catalogue
    assert is_latin("Zoë") and not is_latin("巴斯光年")


def test_an_unnamed_entity_reads_as_its_relation() -> None:
    unnamed = "fb_genre:m.02"
    assert relation_phrase("has_genre", unnamed, unnamed, True) == "with the same genre"


def test_liked_keys_lists_only_liked_pairs() -> None:
    indptr = np.asarray([0, 2, 3])
    keys = liked_keys(indptr, np.asarray([4, 1, 4]), np.asarray([True, False, True]), 10)
    assert keys.tolist() == [4, 14]
