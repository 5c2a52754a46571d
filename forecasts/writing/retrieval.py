"""Retrieval over the knowledge base, behind one small interface with two adapters.

    index = retrieval_backend()
    index.sync(passages, progress=callback, removed=["old-key"])   # push changed passages
    index.search("Venus in Pisces love", {"kind": "body_in_sign", "body": "venus"}, top_k=3)

- `LocalIndex` (default): BM25 via `bm25s`, metadata filters applied as a `weight_mask`. It is
  rebuilt in memory (about 20 ms for 400 passages) the first time a process searches, and again
  whenever the `Passage` table changes (its row count or newest `updated_at` moves). Nothing to
  run, nothing on disk.
- `PineconeIndex`: a serverless Pinecone index (`PINECONE_INDEX`), one namespace per
  KB_VERSION, vectors from Pinecone's hosted inference (`PINECONE_EMBEDDINGS=pinecone`, default)
  or OpenAI embeddings (`PINECONE_EMBEDDINGS=openai`); metadata filters run server-side.

`RETRIEVAL_BACKEND` picks one by dotted path; left empty, Pinecone is used when
PINECONE_API_KEY is set, else the local index. Filters are a dict of field -> value (equality)
or field -> list (any of); `topics` matches when the passage lists that topic.

When Pinecone fails at generation time, `search_with_fallback` answers from the local index and
says so (the forecast's `fallback_reason` records it); after one failure the process leaves
Pinecone alone for five minutes, because the SDK's data-plane client retries on its own (about
three seconds on a dead host) and twelve signs should not pay that twelve times. Vectors of
passages deleted outside `kb_index` may linger in Pinecone; hits whose key has no Passage row
are dropped, and `kb_index --full` pushes everything again.
"""

import functools
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from forecasts.writing.clients import openai_client, secret
from forecasts.writing.knowledge import KB_VERSION, LoadResult, PassageDoc, knowledge_load

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]
LIST_FIELDS = frozenset({"topics"})
FILTER_FIELDS = frozenset({"key", "kind", "body", "other_body", "sign", "house", "aspect", "topics"})


@dataclass(frozen=True)
class Hit:
    """One search result: the passage key and a backend-specific score (higher is better)."""

    key: str
    score: float


class RetrievalError(Exception):
    """The index could not answer; `permanent` says whether trying again could help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class PassageIndex(Protocol):
    """What the forecast pipeline needs from a passage index."""

    name: str

    def sync(self, passages: Sequence[PassageDoc], progress: Progress | None = None, *, removed=()) -> None:
        """Add or replace `passages` in the index and drop the `removed` keys."""

    def search(self, query_text: str, filters: Mapping[str, Any] | None = None, top_k: int = 5) -> list[Hit]:
        """The best `top_k` passages for the query among those matching `filters`."""

    def index_token(self, content_hash: str) -> str:
        """What `Passage.indexed_hash` holds once this index has a passage with that content."""


def _check_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    filters = dict(filters or {})
    unknown = set(filters) - FILTER_FIELDS
    if unknown:
        raise ValueError(f"unknown filter fields: {', '.join(sorted(unknown))}")
    return filters


def _token(backend: str, content_hash: str) -> str:
    return hashlib.sha256(f"{backend}:{KB_VERSION}:{content_hash}".encode()).hexdigest()


_WORD = re.compile(r"[a-z]+")
# Small, fixed stop list: the passages are short and plain, so BM25 needs little help.
# fmt: off
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "into", "is", "it",
    "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will", "with", "you", "your", "yours",
})
# fmt: on


def _tokens(text: str) -> list[str]:
    return [word for word in _WORD.findall(text.lower()) if word not in _STOPWORDS and len(word) > 1]


@dataclass(frozen=True)
class _LocalState:
    """One build of the local index, swapped in whole so a search never sees half of a rebuild."""

    docs: list[PassageDoc]
    value_masks: dict[str, dict]  # field -> value -> which passages have it
    retriever: Any


def _local_state(docs: list[PassageDoc]) -> _LocalState:
    import bm25s

    # bm25s sets its own logger to DEBUG when imported; its progress lines are noise here.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    value_masks: dict[str, dict] = {name: {} for name in FILTER_FIELDS}
    for position, doc in enumerate(docs):
        for name in FILTER_FIELDS:
            value = getattr(doc, name)
            for item in value if name in LIST_FIELDS else (value,):
                if item not in value_masks[name]:
                    value_masks[name][item] = np.zeros(len(docs), dtype=bool)
                value_masks[name][item][position] = True
    retriever = None
    if docs:
        # The title counts twice: it names what the passage is about.
        corpus = [_tokens(f"{doc.title} {doc.title} {doc.text} {' '.join(doc.topics)}") for doc in docs]
        retriever = bm25s.BM25()
        retriever.index(corpus, show_progress=False)
    return _LocalState(docs, value_masks, retriever)


class LocalIndex:
    """BM25 over the passages, in memory; the embedded default (see the module docstring)."""

    name = "local"

    def __init__(self, docs: Sequence[PassageDoc] | None = None) -> None:
        # Given docs make a fixed index (pure use, tests); without, it follows the Passage table.
        self._fixed = docs is not None
        self._lock = threading.Lock()
        self._fingerprint: object = None
        self._state = _local_state(list(docs or []))

    def _current(self) -> _LocalState:
        if self._fixed:
            return self._state
        from django.db.models import Count, Max

        from forecasts.models import Passage

        fingerprint = tuple(Passage.objects.aggregate(count=Count("id"), newest=Max("updated_at")).values())
        with self._lock:
            if fingerprint != self._fingerprint:
                self._state = _local_state([PassageDoc.from_model(p) for p in Passage.objects.order_by("key")])
                self._fingerprint = fingerprint
            return self._state

    @property
    def docs(self) -> list[PassageDoc]:
        return self._current().docs

    def sync(self, passages: Sequence[PassageDoc], progress: Progress | None = None, *, removed=()) -> None:
        """Nothing to push: the next search rebuilds from the Passage table."""
        with self._lock:
            self._fingerprint = None
        if progress:
            progress(len(passages))

    def search(self, query_text: str, filters: Mapping[str, Any] | None = None, top_k: int = 5) -> list[Hit]:
        filters = _check_filters(filters)
        state = self._current()
        docs = state.docs
        if not docs or top_k <= 0:
            return []
        keep = np.ones(len(docs), dtype=bool)
        for name, wanted in filters.items():
            options = list(wanted) if isinstance(wanted, list | tuple | set | frozenset) else [wanted]
            column = np.zeros(len(docs), dtype=bool)
            for option in options:
                found = state.value_masks[name].get(option)
                if found is not None:
                    column |= found
            keep &= column
        if not keep.any():
            return []
        mask = keep.astype(np.float32)
        query = [word for word in _tokens(query_text) if word in state.retriever.vocab_dict]
        scores = state.retriever.get_scores(query, weight_mask=mask) if query else np.zeros(len(docs), np.float32)
        # A small bonus keeps every passage that matches the filters ahead of those that do not,
        # even when no query word occurs in it (filters alone can identify the passage).
        ranked = scores + mask * 1e-3
        order = np.argsort(-ranked, kind="stable")[: min(top_k, int(keep.sum()))]
        return [Hit(docs[i].key, round(float(scores[i]), 6)) for i in order]

    def index_token(self, content_hash: str) -> str:
        return _token(self.name, content_hash)


class Embedder(Protocol):
    dimension: int

    def embed(self, texts: Sequence[str], *, kind: str) -> list[list[float]]:
        """One vector per text; kind is "passage" for stored text, "query" for a search."""


class PineconeEmbedder:
    """Pinecone's hosted inference (`multilingual-e5-large` by default)."""

    def __init__(self, client, model: str, dimension: int) -> None:
        self._client, self.model, self.dimension = client, model, dimension

    def embed(self, texts: Sequence[str], *, kind: str) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), 90):  # the API takes at most 96 inputs per call
            result = self._client.inference.embed(
                model=self.model,
                inputs=list(texts[start : start + 90]),
                parameters={"input_type": kind, "truncate": "END"},
            )
            vectors.extend(list(item.values) for item in result.data)
        return vectors


class OpenAIEmbedder:
    """OpenAI embeddings (`text-embedding-3-small` by default)."""

    def __init__(self, client, model: str, dimension: int) -> None:
        self._client, self.model, self.dimension = client, model, dimension

    def embed(self, texts: Sequence[str], *, kind: str) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), 256):
            result = self._client.embeddings.create(
                model=self.model, input=list(texts[start : start + 256]), dimensions=self.dimension
            )
            vectors.extend(list(item.embedding) for item in sorted(result.data, key=lambda item: item.index))
        return vectors


def _pinecone_filter(filters: Mapping[str, Any]) -> dict:
    expression = {}
    for name, wanted in filters.items():
        options = list(wanted) if isinstance(wanted, list | tuple | set | frozenset) else None
        if options is not None or name in LIST_FIELDS:
            expression[name] = {"$in": options if options is not None else [wanted]}
        else:
            expression[name] = {"$eq": wanted}
    return expression


class PineconeIndex:
    """A serverless Pinecone index with one namespace per KB_VERSION (see the module docstring)."""

    name = "pinecone"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        index_name: str | None = None,
        host: str | None = None,
        embeddings: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> None:
        from django.conf import settings

        self.api_key = api_key or secret("PINECONE_API_KEY")
        self.index_name = index_name or settings.PINECONE_INDEX
        self.host = host if host is not None else settings.PINECONE_HOST
        self.embeddings = embeddings or settings.PINECONE_EMBEDDINGS
        self.timeout = timeout if timeout is not None else settings.PINECONE_TIMEOUT
        self.max_retries = max_retries if max_retries is not None else settings.PINECONE_MAX_RETRIES
        self.namespace = f"kb-v{KB_VERSION}"
        self.cloud, self.region = settings.PINECONE_CLOUD, settings.PINECONE_REGION
        if self.embeddings not in {"pinecone", "openai"}:
            raise RetrievalError(
                f"PINECONE_EMBEDDINGS must be pinecone or openai, not {self.embeddings!r}", permanent=True
            )
        self._lock = threading.Lock()
        self._client = None
        self._index = None
        self._embedder: Embedder | None = None

    @property
    def client(self):
        """The Pinecone client, built on first use (never at import)."""
        if self._client is None:
            if not self.api_key:
                raise RetrievalError("PINECONE_API_KEY is not set", permanent=True)
            from pinecone import Pinecone, RetryConfig

            self._client = Pinecone(
                api_key=self.api_key,
                timeout=self.timeout,
                retry_config=RetryConfig(max_retries=self.max_retries, backoff_factor=0.2, max_wait=2.0),
                source_tag="daily_horoscope",
            )
        return self._client

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from django.conf import settings

            if self.embeddings == "openai":
                self._embedder = OpenAIEmbedder(
                    openai_client(timeout=self.timeout, max_retries=self.max_retries),
                    settings.OPENAI_EMBED_MODEL,
                    settings.OPENAI_EMBED_DIMENSION,
                )
            else:
                self._embedder = PineconeEmbedder(
                    self.client, settings.PINECONE_EMBED_MODEL, settings.PINECONE_EMBED_DIMENSION
                )
        return self._embedder

    def _data_plane(self, *, create: bool = False):
        with self._lock:
            if self._index is None:
                host = self.host or self._describe_or_create(create)
                self._index = self.client.Index(host=host)
            return self._index

    def _describe_or_create(self, create: bool) -> str:
        from pinecone import NotFoundError, ServerlessSpec

        try:
            return self.client.describe_index(self.index_name).host
        except NotFoundError:
            if not create:
                raise RetrievalError(
                    f"Pinecone index {self.index_name!r} does not exist: run `manage.py kb_index`", permanent=True
                ) from None
        logger.info("Creating Pinecone index %s (%s dimensions)", self.index_name, self.embedder.dimension)
        model = self.client.create_index(
            name=self.index_name,
            spec=ServerlessSpec(cloud=self.cloud, region=self.region),
            dimension=self.embedder.dimension,
            metric="cosine",
            timeout=300,
        )
        return model.host

    def sync(self, passages: Sequence[PassageDoc], progress: Progress | None = None, *, removed=()) -> None:
        try:
            index = self._data_plane(create=True)
            for start in range(0, len(passages), 90):
                batch = passages[start : start + 90]
                vectors = self.embedder.embed([f"{doc.title}. {doc.text}" for doc in batch], kind="passage")
                index.upsert(
                    vectors=[
                        {"id": doc.key, "values": vector, "metadata": doc.metadata()}
                        for doc, vector in zip(batch, vectors, strict=True)
                    ],
                    namespace=self.namespace,
                    show_progress=False,
                )
                if progress:
                    progress(len(batch))
            removed = list(removed)
            for start in range(0, len(removed), 1000):
                index.delete(ids=removed[start : start + 1000], namespace=self.namespace)
        except RetrievalError:
            raise
        except Exception as error:
            raise _retrieval_error(error) from error

    def search(self, query_text: str, filters: Mapping[str, Any] | None = None, top_k: int = 5) -> list[Hit]:
        filters = _check_filters(filters)
        if top_k <= 0:
            return []
        try:
            index = self._data_plane()
            vector = self.embedder.embed([query_text or "horoscope"], kind="query")[0]
            result = index.query(
                vector=vector,
                top_k=top_k,
                namespace=self.namespace,
                filter=_pinecone_filter(filters) or None,
                include_metadata=False,
                timeout=self.timeout,
            )
        except RetrievalError:
            raise
        except Exception as error:
            raise _retrieval_error(error) from error
        return [Hit(match.id, float(match.score or 0.0)) for match in result.matches]

    def index_token(self, content_hash: str) -> str:
        return _token(f"{self.name}:{self.index_name}:{self.embeddings}", content_hash)


def _retrieval_error(error: Exception) -> RetrievalError:
    status = getattr(error, "status_code", None) or getattr(error, "status", None)
    permanent = isinstance(status, int) and status in {400, 401, 403, 404}
    return RetrievalError(f"{type(error).__name__}: {error}"[:300], permanent=permanent)


def retrieval_backend_path() -> str:
    """The dotted path of the configured index class (see the module docstring)."""
    from django.conf import settings

    configured = getattr(settings, "RETRIEVAL_BACKEND", "")
    if configured:
        return configured
    return (
        "forecasts.writing.retrieval.PineconeIndex"
        if secret("PINECONE_API_KEY")
        else "forecasts.writing.retrieval.LocalIndex"
    )


@functools.cache
def _backend(path: str, key_fingerprint: str) -> PassageIndex:
    from django.utils.module_loading import import_string

    return import_string(path)()


def retrieval_backend() -> PassageIndex:
    """The configured PassageIndex, one instance per process (and per configuration)."""
    key = secret("PINECONE_API_KEY")
    return _backend(retrieval_backend_path(), hashlib.sha256(key.encode()).hexdigest()[:12])


@functools.cache
def local_index() -> LocalIndex:
    """The process's LocalIndex over the Passage table (also the fallback when Pinecone fails)."""
    return LocalIndex()


class CircuitBreaker:
    """After a failure, skip the remote index for `cooldown` seconds (one slow failure, not twelve)."""

    def __init__(self, cooldown: float = 300.0) -> None:
        self.cooldown = cooldown
        self._open_until = 0.0
        self.last_error = ""

    def allows(self) -> bool:
        return time.monotonic() >= self._open_until

    def trip(self, reason: str) -> None:
        self.last_error = reason
        self._open_until = time.monotonic() + self.cooldown

    def reset(self) -> None:
        self._open_until = 0.0


remote_breaker = CircuitBreaker()


def search_with_fallback(
    primary: PassageIndex, query_text: str, filters: Mapping[str, Any] | None, top_k: int
) -> tuple[list[Hit], str]:
    """Search `primary`; if it is remote and fails, search the local index instead.

    Returns the hits and a reason ("" when the primary answered).
    """
    if isinstance(primary, LocalIndex):
        return primary.search(query_text, filters, top_k), ""
    if remote_breaker.allows():
        try:
            return primary.search(query_text, filters, top_k), ""
        except RetrievalError as error:
            logger.warning("Retrieval from %s failed, using the local index: %s", primary.name, error)
            remote_breaker.trip(str(error))
    reason = f"{primary.name} unavailable ({remote_breaker.last_error}); passages came from the local index"
    return local_index().search(query_text, filters, top_k), reason


@dataclass
class IndexReport:
    """What `knowledge_index` pushed to the passage index, counted against the index's last state."""

    backend: str
    loaded: LoadResult
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.changed} changed, {self.removed} removed, {self.unchanged} unchanged "
            f"in the {self.backend} index"
        )


def knowledge_index(
    index=None,
    *,
    full: bool = False,
    force_files: bool = False,
    progress=None,
    on_total=None,
    directory: Path | None = None,
) -> IndexReport:
    """Load the YAML (`knowledge_load`), then push what changed since the last run to the index.

    A row is pending when its `indexed_hash` is not this index's token for its `content_hash`
    (new, edited in a file or the admin, or never pushed to this backend); `full` pushes all.
    `on_total(n)` is told how many will be pushed, `progress(k)` after each batch.
    """
    from forecasts.models import Passage

    index = index or retrieval_backend()
    loaded = knowledge_load(directory, force=force_files)
    rows = list(Passage.objects.order_by("key"))
    pending = [row for row in rows if full or row.indexed_hash != index.index_token(row.content_hash)]
    report = IndexReport(backend=index.name, loaded=loaded, removed=len(loaded.removed))
    report.added = sum(1 for row in pending if not row.indexed_hash)
    report.changed = len(pending) - report.added
    report.unchanged = len(rows) - len(pending)
    if on_total:
        on_total(len(pending))
    index.sync([PassageDoc.from_model(row) for row in pending], progress, removed=loaded.removed)
    for row in pending:
        row.indexed_hash = index.index_token(row.content_hash)
    Passage.objects.bulk_update(pending, ["indexed_hash"], batch_size=200)
    return report
