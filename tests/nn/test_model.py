"""KGRec: shapes, the history view, the one-product KG aggregation, gradients, rebuilds."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kgrec.nn.model import ItemEntityGraph, KGRec, prune_edge_types

NUM_NODES = {"user": 4, "item": 6, "genre": 3, "director": 2}
GENRE = ("item", "has_genre", "genre")
DIRECTOR = ("item", "directed_by", "director")
EDGES = {
    GENRE: torch.tensor([[0, 1, 2, 3, 4, 5], [0, 0, 1, 1, 2, 2]]),
    DIRECTOR: torch.tensor([[0, 3, 5], [0, 0, 1]]),  # director 1 has one film: pruned
    ("genre", "rev_has_genre", "item"): torch.tensor([[0, 0], [0, 1]]),  # reverses are ignored
}
TYPES = [GENRE, DIRECTOR, ("genre", "rev_has_genre", "item")]


def model(use_kg: bool = True, text_dim: int | None = None, **kwargs: object) -> KGRec:
    torch.manual_seed(0)
    graph = ItemEntityGraph.build(EDGES, TYPES, num_items=6) if use_kg else None
    m = KGRec(
        NUM_NODES,
        TYPES,
        embedding_dim=8,
        text_dim=text_dim,
        use_kg=use_kg,
        num_entities=graph.num_entities if graph else 0,
        **kwargs,  # type: ignore[arg-type]
    )
    if graph is not None:
        m.set_graph(graph)
    return m


def rows(*items: list[int]) -> torch.Tensor:
    out = torch.zeros(len(items), 6)
    for r, seq in enumerate(items):
        for age, item in enumerate(reversed(seq)):
            out[r, item] += 0.9**age
    return out


def test_entity_graph_keeps_entities_with_two_items_and_skips_reverses() -> None:
    graph = ItemEntityGraph.build(EDGES, TYPES, num_items=6)
    assert graph.num_entities == 4  # 3 genres + director 0 (director 1 has one item)
    assert graph.item.numel() == 6 + 2
    assert set(graph.types) == {"genre", "director"}
    per_item = torch.bincount(graph.item, minlength=6).float()
    assert torch.allclose(graph.weight, per_item[graph.item].reciprocal())


@pytest.mark.parametrize("use_kg", [False, True])
@pytest.mark.parametrize("text", [False, True])
def test_logits_cover_the_catalogue(use_kg: bool, text: bool) -> None:
    m = model(use_kg=use_kg, text_dim=5 if text else None)
    x_dict = {"item": torch.randn(6, 5), "genre": torch.randn(3, 5)} if text else None
    logits = m(rows([0, 1], [2], []), x_dict)
    assert logits.shape == (3, 6)
    assert torch.isfinite(logits).all()
    assert logits[:2].abs().max() <= 1 / m.temperature + 1e-5  # cosine / temperature
    assert torch.all(logits[2] == 0)  # no history, no preference


def test_kg_aggregation_is_one_product_equal_to_the_per_edge_sum() -> None:
    m = model()
    graph = m.graph
    entity = m.entity_emb.weight
    expected = torch.zeros(6, 8)
    for i, e, r, w in zip(graph.item, graph.entity, graph.relation, graph.weight, strict=True):
        expected[i] += w * m.relation_emb[r] * entity[e]
    assert torch.allclose(m._kg_messages({}), expected, atol=1e-6)


def test_items_with_the_same_entities_get_the_same_message() -> None:
    with_kg = model(use_kg=True)
    without = KGRec(**{**with_kg.model_args, "use_kg": False})
    without.load_state_dict(with_kg.state_dict())
    message = with_kg.item_embeddings()[0] - without.item_embeddings()[0]
    # items 4 and 5 both link only genre 2 (director 1 links one item: pruned)
    assert torch.allclose(message[4], message[5], atol=1e-6)
    assert not torch.allclose(message[2], message[4])  # genre 1 is another entity
    assert not torch.allclose(message[0], message[1])  # item 0 also has director 0


def test_entity_text_enters_through_the_mlp_only_where_there_is_text() -> None:
    m = model(text_dim=5)
    genre = torch.randn(3, 5)
    genre[1] = 0  # genre 1 has no text: `kgrec embed` leaves such rows at zero
    x_dict = {"genre": genre, "director": torch.randn(2, 5)}
    graph = m.graph
    entity = m.entity_emb.weight.detach().clone()
    mlp = m.text_mlp
    assert mlp is not None
    for row, (t, index) in enumerate(zip(graph.entity_type, graph.entity_index, strict=True)):
        text = x_dict[graph.types[t]][index]
        if text.abs().sum() > 0:
            entity[row] += mlp(text).detach()
    expected = torch.zeros(6, 8)
    for i, e, r, w in zip(graph.item, graph.entity, graph.relation, graph.weight, strict=True):
        expected[i] += w * m.relation_emb[r].detach() * entity[e]
    assert torch.allclose(m._kg_messages(x_dict), expected, atol=1e-6)
    # new features (another tensor) are gathered again, not served from the cache
    x_dict["genre"] = genre + 1
    assert not torch.allclose(m._kg_messages(x_dict), expected, atol=1e-4)
    assert torch.allclose(m._kg_messages({}), m._kg_messages({"item": torch.randn(6, 5)}))


def test_history_view_follows_new_behaviour_and_weighs_recent_items_most() -> None:
    m = model(use_kg=False)
    items_in, _ = m.item_embeddings()
    before = m.user_embedding(rows([0, 1]), items_in)
    after = m.user_embedding(rows([0, 1, 4]), items_in)
    assert not torch.allclose(before, after)  # a new interaction moves the user at once
    latest_first = m.user_embedding(rows([0, 1]), items_in)
    oldest_first = m.user_embedding(rows([1, 0]), items_in)
    expected = F.normalize(0.9 * items_in[0] + items_in[1], dim=-1)
    assert torch.allclose(latest_first[0], expected, atol=1e-6)
    assert not torch.allclose(latest_first, oldest_first)


def test_gradients_reach_ids_text_entities_and_relations() -> None:
    m = model(text_dim=5)
    x_dict = {"item": torch.randn(6, 5), "genre": torch.randn(3, 5)}
    m(rows([0, 1], [3]), x_dict).logsumexp(-1).sum().backward()
    assert m.item_input.weight.grad is not None and m.item_input.weight.grad.abs().sum() > 0
    assert m.item_output.weight.grad is not None and m.item_output.weight.grad.abs().sum() > 0
    assert m.entity_emb.weight.grad is not None and m.entity_emb.weight.grad.abs().sum() > 0
    assert m.relation_emb.grad is not None and m.relation_emb.grad.abs().sum() > 0
    first = m.text_mlp[0] if m.text_mlp is not None else None
    assert first is not None and first.weight.grad is not None and first.weight.grad.abs().sum() > 0


def test_model_args_rebuild_the_same_scores() -> None:
    m = model(text_dim=5)
    x_dict = {"item": torch.randn(6, 5)}
    copy = KGRec(**m.model_args)
    copy.load_state_dict(m.state_dict())
    copy.set_graph(m.graph)
    history = rows([0, 1], [5, 2, 3])
    assert torch.allclose(copy(history, x_dict), m(history, x_dict))


def test_graph_of_another_size_is_refused() -> None:
    m = model()
    with pytest.raises(ValueError, match="entities"):
        m.set_graph(ItemEntityGraph.build({GENRE: EDGES[GENRE]}, [GENRE], num_items=6))


def test_prune_edge_types_keeps_interactions() -> None:
    edges = {
        ("user", "interacts", "item"): torch.zeros(2, 1, dtype=torch.long),
        GENRE: torch.zeros(2, 5, dtype=torch.long),
        DIRECTOR: torch.zeros(2, 50, dtype=torch.long),
    }
    kept = prune_edge_types(edges, min_edges=20)
    assert set(kept) == {("user", "interacts", "item"), DIRECTOR}


@pytest.mark.parametrize("text", [False, True])
def test_embeddings_of_some_items_equal_those_rows_of_the_whole_catalogue(text: bool) -> None:
    """Sampled training embeds only a step's items from their one-hop subgraph: the same rows."""
    m = model(text_dim=5 if text else None)
    genre = torch.randn(3, 5)
    genre[1] = 0  # an entity without text
    x_dict = {"item": torch.randn(6, 5), "genre": genre, "director": torch.randn(2, 5)}
    full_in, full_out = m.item_embeddings(x_dict if text else None)
    for items in (torch.tensor([1, 4]), torch.tensor([0, 2, 3, 5]), torch.arange(6)):
        some_in, some_out = m.item_embeddings(x_dict if text else None, items)
        assert some_in.shape == some_out.shape == (items.numel(), 8)
        assert torch.allclose(some_in, full_in[items], atol=1e-6)
        assert torch.allclose(some_out, full_out[items], atol=1e-6)
        assert torch.allclose(m.kg_messages_of(items, x_dict), m._kg_messages(x_dict)[items])


def test_embeddings_of_some_items_send_gradients_to_their_entities_only() -> None:
    m = model()
    m.sparse_gradients(True)
    items_in, items_out = m.item_embeddings(None, torch.tensor([1, 2]))  # genres 0 and 1
    (items_in.sum() + items_out.sum()).backward()
    grad = m.entity_emb.weight.grad
    assert grad is not None and grad.is_sparse  # a sampled step's update touches these rows
    grad = grad.to_dense()
    graph = m.graph
    reached = set(graph.entity[torch.isin(graph.item, torch.tensor([1, 2]))].tolist())
    for e in range(graph.num_entities):
        assert bool(grad[e].abs().sum() > 0) == (e in reached), e
    item_grad = m.item_input.weight.grad
    assert item_grad is not None and item_grad.is_sparse
    assert set(item_grad.to_dense().abs().sum(1).nonzero().flatten().tolist()) == {1, 2}
