"""Items whose text is closest to a free text (cold start: ``kgrec recommend --profile``)."""

from __future__ import annotations

from pathlib import Path

from kgrec.config import FeatureConfig
from kgrec.data.layout import ID_MAP_FILE
from kgrec.data.mapping import IdMap
from kgrec.errors import KgrecError
from kgrec.naming import ITEM
from kgrec.text.encoder import TextEncoder
from kgrec.text.features import load_features, require_same_model


def items_like(
    text: str, artifacts_dir: Path | str, feature_config: FeatureConfig, k: int = 10
) -> list[str]:
    """The ids of the ``k`` items whose text features are closest (cosine) to ``text``.

    ``text`` is embedded by the same language model as the items' text features
    (``features.pt``), on the CPU.

    Raises:
        KgrecError: empty ``text``, no item features, or another text model in the config.
    """
    if not text.strip():
        raise KgrecError("--profile is empty: describe what the user likes in a few words")
    x_dict, meta = load_features(artifacts_dir)
    if ITEM not in x_dict:
        raise KgrecError("the text features have no item vectors: run `kgrec embed`")
    encoder = TextEncoder.from_config(feature_config, device="cpu")
    require_same_model(encoder, meta)
    query = encoder.encode([text])[0]  # [text_dim]
    items = x_dict[ITEM]  # [I, text_dim]
    similarity = items @ query / items.norm(dim=1).clamp_min(1e-12)
    top = similarity.topk(min(k, items.size(0))).indices.tolist()
    ids = IdMap.load(Path(artifacts_dir) / ID_MAP_FILE).ids[ITEM]
    return [str(ids[i]) for i in top]
