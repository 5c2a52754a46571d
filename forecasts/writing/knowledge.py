"""The knowledge base: original passages in forecasts/writing/knowledge_base/*.yaml, loaded into `Passage` rows.

The YAML files are the source; the admin may edit or add passages on top of them. The rule
`knowledge_load()` follows, kept simple on purpose:

- A passage is identified by its key (the YAML `id`). New keys are added, changed ones updated,
  identical ones left alone (so their `updated_at` keeps meaning "last written").
- A row whose last write came from the admin (its newest admin log entry is at least as new as
  its `updated_at`) belongs to the admin: the loader neither overwrites it nor removes it when its
  key disappears from the files. `knowledge_load(force=True)` (`kb_index --force-files`) makes
  the files win again.
- Any other row whose key is no longer in the files is removed.

`content_hash` fingerprints what retrieval indexes (kind, metadata, title, text); the index
pushes only rows whose `indexed_hash` no longer matches (`knowledge_index` in forecasts/writing/retrieval.py).
Bump KB_VERSION when passages change wholesale: the Pinecone namespace follows it, so a new
version is indexed side by side and switched to atomically.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from forecasts.zodiac import SIGN_SLUGS

KB_VERSION = "1"
KNOWLEDGE_DIR = Path(__file__).resolve().parent / "knowledge_base"

PASSAGE_KINDS = ("sign_profile", "body_in_sign", "body_in_house", "aspect", "retrograde", "lunation", "eclipse")
KB_BODIES = ("sun", "moon", "mercury", "venus", "mars", "jupiter", "saturn", "uranus", "neptune", "pluto", "north_node")
KB_ASPECTS = ("conjunction", "sextile", "square", "trine", "opposition")
KB_TOPICS = ("love", "career", "money", "health", "growth")
KB_SIGNS = SIGN_SLUGS  # forecasts.zodiac is the one list of signs


class KnowledgeError(ValueError):
    """A knowledge-base file that cannot be loaded; the message names the file and passage."""


@dataclass(frozen=True)
class PassageDoc:
    """One passage as plain data: what the YAML holds, what an index stores, what prompts quote."""

    key: str
    kind: str
    title: str
    text: str
    body: str = ""
    other_body: str = ""
    sign: str = ""
    house: int | None = None
    aspect: str = ""
    topics: tuple[str, ...] = field(default_factory=tuple)

    @property
    def content_hash(self) -> str:
        return content_hash(self)

    def metadata(self) -> dict:
        """Filterable fields without empty values (Pinecone stores no nulls)."""
        values = {
            "key": self.key,
            "kind": self.kind,
            "body": self.body,
            "other_body": self.other_body,
            "sign": self.sign,
            "house": self.house,
            "aspect": self.aspect,
            "topics": list(self.topics),
        }
        return {name: value for name, value in values.items() if value not in ("", None, [])}

    def to_dict(self) -> dict:
        data = asdict(self)
        data["topics"] = list(self.topics)
        return data

    @classmethod
    def from_model(cls, passage) -> "PassageDoc":
        return cls(
            key=passage.key,
            kind=passage.kind,
            title=passage.title,
            text=passage.text,
            body=passage.body or "",
            other_body=passage.other_body or "",
            sign=passage.sign or "",
            house=passage.house,
            aspect=passage.aspect or "",
            topics=tuple(passage.topics or ()),
        )


def content_hash(doc: PassageDoc) -> str:
    """SHA-256 of everything an index sees of a passage."""
    payload = json.dumps(doc.to_dict(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _doc_from_item(item: dict, where: str) -> PassageDoc:
    if not isinstance(item, dict):
        raise KnowledgeError(f"{where}: each passage must be a mapping")
    key = _text(item.get("id"))
    where = f"{where} ({key or 'no id'})"
    if not key:
        raise KnowledgeError(f"{where}: missing id")
    kind = _text(item.get("kind"))
    if kind not in PASSAGE_KINDS:
        raise KnowledgeError(f"{where}: unknown kind {kind!r}")
    body, other_body = _text(item.get("body")), _text(item.get("other_body"))
    for name, value in (("body", body), ("other_body", other_body)):
        if value and value not in KB_BODIES:
            raise KnowledgeError(f"{where}: unknown {name} {value!r}")
    sign = _text(item.get("sign"))
    if sign and sign not in KB_SIGNS:
        raise KnowledgeError(f"{where}: unknown sign {sign!r}")
    house = item.get("house")
    if house is not None and (not isinstance(house, int) or not 1 <= house <= 12):
        raise KnowledgeError(f"{where}: house must be 1-12, not {house!r}")
    aspect = _text(item.get("aspect"))
    if aspect and aspect not in KB_ASPECTS:
        raise KnowledgeError(f"{where}: unknown aspect {aspect!r}")
    topics = item.get("topics") or []
    if not isinstance(topics, list) or not set(topics) <= set(KB_TOPICS):
        raise KnowledgeError(f"{where}: topics must be a list drawn from {', '.join(KB_TOPICS)}")
    title, text = _text(item.get("title")), " ".join(_text(item.get("text")).split())
    if not title or not text:
        raise KnowledgeError(f"{where}: title and text are required")
    return PassageDoc(
        key=key,
        kind=kind,
        title=title[:200],
        text=text,
        body=body,
        other_body=other_body,
        sign=sign,
        house=house,
        aspect=aspect,
        topics=tuple(topics),
    )


def knowledge_read(directory: Path | None = None) -> list[PassageDoc]:
    """Every passage in the YAML files of `directory`, validated; keys must be unique."""
    directory = Path(directory or KNOWLEDGE_DIR)
    docs: dict[str, PassageDoc] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            # The C loader when PyYAML has it: the same safe subset, ten times faster.
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            items = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or []  # noqa: S506 - a safe loader
        except yaml.YAMLError as error:
            raise KnowledgeError(f"{path.name}: not valid YAML ({error})") from error
        if not isinstance(items, list):
            raise KnowledgeError(f"{path.name}: the file must hold a list of passages")
        for index, item in enumerate(items):
            doc = _doc_from_item(item, f"{path.name} item {index + 1}")
            if doc.key in docs:
                raise KnowledgeError(f"{path.name}: duplicate id {doc.key!r}")
            docs[doc.key] = doc
    return list(docs.values())


@dataclass
class LoadResult:
    """What `knowledge_load` did, by passage key."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_admin_edits: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged"
        )
        if self.kept_admin_edits:
            text += f", {len(self.kept_admin_edits)} kept as edited in the admin"
        return text


def _admin_owned(passages: Iterable) -> set[str]:
    """Keys of rows whose newest write was an admin add/change (see the module docstring)."""
    from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import Max

    from forecasts.models import Passage

    content_type = ContentType.objects.get_for_model(Passage)
    latest = dict(
        LogEntry.objects.filter(content_type=content_type, action_flag__in=[ADDITION, CHANGE])
        .values_list("object_id")
        .annotate(last=Max("action_time"))
    )
    return {p.key for p in passages if latest.get(str(p.pk)) and latest[str(p.pk)] >= p.updated_at}


def passage_apply(passage, doc: PassageDoc) -> None:
    """Copy a PassageDoc onto a Passage row (unsaved) and refresh its content hash."""
    passage.kind = doc.kind
    passage.title = doc.title
    passage.text = doc.text
    passage.body = doc.body
    passage.other_body = doc.other_body
    passage.sign = doc.sign
    passage.house = doc.house
    passage.aspect = doc.aspect
    passage.topics = list(doc.topics)
    passage.content_hash = doc.content_hash


def knowledge_load(directory: Path | None = None, *, force: bool = False, docs: Sequence[PassageDoc] | None = None):
    """Upsert the YAML passages into `Passage` rows by key; return a LoadResult.

    Idempotent: a second run with unchanged files writes nothing. See the module docstring for
    how admin edits are kept (`force=True` lets the files win).
    """
    from django.db import transaction

    from forecasts.models import Passage

    docs = list(docs) if docs is not None else knowledge_read(directory)
    wanted = {doc.key: doc for doc in docs}
    result = LoadResult()
    with transaction.atomic():
        existing = {p.key: p for p in Passage.objects.select_for_update()}
        owned = set() if force else _admin_owned(existing.values())
        to_create, to_update = [], []
        for key, doc in wanted.items():
            row = existing.get(key)
            if row is None:
                row = Passage(key=key)
                passage_apply(row, doc)
                to_create.append(row)
                result.added.append(key)
            elif key in owned and PassageDoc.from_model(row) != doc:
                result.kept_admin_edits.append(key)
            elif PassageDoc.from_model(row) != doc or row.content_hash != doc.content_hash:
                passage_apply(row, doc)
                to_update.append(row)
                result.changed.append(key)
            else:
                result.unchanged.append(key)
        # A concurrent load may have added the same keys; the unique key keeps one of each.
        Passage.objects.bulk_create(to_create, batch_size=200, ignore_conflicts=True)
        # save() rather than bulk_update so updated_at (auto_now) moves.
        for row in to_update:
            row.save()
        gone = [row for key, row in existing.items() if key not in wanted]
        for row in gone:
            if row.key in owned:
                result.kept_admin_edits.append(row.key)
            else:
                result.removed.append(row.key)
        if result.removed:
            Passage.objects.filter(key__in=result.removed).delete()
    return result
