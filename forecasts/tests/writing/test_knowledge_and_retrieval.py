"""The knowledge base in the database and the passage index: local BM25 and Pinecone (via respx)."""

import shutil
from datetime import date
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from forecasts.models import Forecast, Passage
from forecasts.tests.writing.answers import grounded_answer
from forecasts.writing.generation import forecast_get_or_generate
from forecasts.writing.knowledge import (
    KB_BODIES,
    KB_VERSION,
    KNOWLEDGE_DIR,
    PassageDoc,
    knowledge_load,
    knowledge_read,
)
from forecasts.writing.retrieval import (
    LocalIndex,
    PineconeIndex,
    RetrievalError,
    knowledge_index,
    local_index,
    remote_breaker,
)
from tests.support.fake_pinecone import FakePinecone

PINECONE = "forecasts.writing.retrieval.PineconeIndex"
NAMESPACE = f"kb-v{KB_VERSION}"


@pytest.fixture
def kb_dir(tmp_path):
    """A private copy of the knowledge base files that a test may change."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, target)
    return target


def rewrite(path, change):
    items = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(change(items), sort_keys=False, allow_unicode=True))


@pytest.fixture
def pinecone_settings(settings):
    settings.RETRIEVAL_BACKEND = PINECONE
    settings.PINECONE_API_KEY = "pc-test-" + "y" * 24
    settings.PINECONE_EMBED_DIMENSION = 256
    settings.PINECONE_MAX_RETRIES = 0
    settings.PINECONE_HOST = ""
    return settings


@pytest.mark.django_db
def test_loading_is_an_idempotent_upsert_by_key(kb_dir):
    first = knowledge_load(kb_dir)
    assert len(first.added) == len(knowledge_read(kb_dir)) > 400
    assert Passage.objects.count() == len(first.added)
    assert all(p.content_hash == PassageDoc.from_model(p).content_hash for p in Passage.objects.all()[:20])
    again = knowledge_load(kb_dir)
    assert (again.added, again.changed, again.removed) == ([], [], [])

    profiles = kb_dir / "sign_profiles.yaml"
    rewrite(
        profiles,
        lambda items: [{**i, "text": i["text"] + " Extra."} if i["id"] == "sign-profile-leo" else i for i in items],
    )
    rewrite(profiles, lambda items: [i for i in items if i["id"] != "sign-profile-virgo"])
    changed = knowledge_load(kb_dir)
    assert changed.changed == ["sign-profile-leo"] and changed.removed == ["sign-profile-virgo"]
    assert Passage.objects.get(key="sign-profile-leo").text.endswith("Extra.")
    assert not Passage.objects.filter(key="sign-profile-virgo").exists()


@pytest.mark.django_db
def test_a_passage_edited_in_the_admin_is_kept_until_the_files_are_forced(kb_dir, admin_client):
    knowledge_load(kb_dir)
    passage = Passage.objects.get(key="sign-profile-aries")
    form = {
        "key": passage.key,
        "kind": passage.kind,
        "body": passage.body,
        "other_body": "",
        "sign": passage.sign,
        "house": "",
        "aspect": "",
        "topics": '["career", "growth"]',
        "title": passage.title,
        "text": "Aries, edited in the admin.",
    }
    response = admin_client.post(reverse("admin:forecasts_passage_change", args=[passage.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    edited = Passage.objects.get(pk=passage.pk)
    assert edited.content_hash == PassageDoc.from_model(edited).content_hash  # follows the edit
    rewrite(kb_dir / "sign_profiles.yaml", lambda items: [i for i in items if i["id"] != "sign-profile-aries"])
    kept = knowledge_load(kb_dir)
    assert "sign-profile-aries" in kept.kept_admin_edits and kept.removed == []
    assert Passage.objects.get(key="sign-profile-aries").text == "Aries, edited in the admin."
    forced = knowledge_load(kb_dir, force=True)
    assert forced.removed == ["sign-profile-aries"]


@pytest.mark.django_db
def test_local_index_filters_by_metadata_and_follows_the_table(kb):
    index = LocalIndex()
    hits = index.search("love and romance", {"kind": "body_in_house", "topics": "love"}, top_k=5)
    assert len(hits) == 5
    keys = [hit.key for hit in hits]
    assert all(Passage.objects.get(key=key).kind == "body_in_house" for key in keys)
    assert all("love" in Passage.objects.get(key=key).topics for key in keys)
    assert [h.key for h in index.search("", {"kind": "body_in_sign", "body": "venus", "sign": "pisces"})] == [
        "body-sign-venus-pisces"
    ]
    assert index.search("anything", {"kind": "body_in_sign", "sign": "nowhere"}) == []
    with pytest.raises(ValueError, match="unknown filter"):
        index.search("x", {"colour": "red"})
    # An edit shows up in the next search without any indexing step.
    Passage.objects.filter(key="body-house-mars-7").update(text="zanzibar quartz", updated_at=timezone.now())
    assert index.search("zanzibar", {"kind": "body_in_house"}, top_k=1)[0].key == "body-house-mars-7"


@pytest.mark.django_db
def test_kb_index_reports_what_changed_locally(kb_dir, settings):
    settings.RETRIEVAL_BACKEND = "forecasts.writing.retrieval.LocalIndex"
    first = knowledge_index(directory=kb_dir)
    assert (first.added, first.changed, first.removed, first.unchanged) == (len(first.loaded.added), 0, 0, 0)
    second = knowledge_index(directory=kb_dir)
    assert (second.added, second.changed, second.removed) == (0, 0, 0) and second.unchanged == first.added
    out = StringIO()
    call_command("kb_index", stdout=out)
    assert "in the local index" in out.getvalue()


@pytest.mark.django_db
def test_kb_index_pushes_to_pinecone_only_what_changed(kb_dir, pinecone_settings):
    with FakePinecone(dimension=256) as pinecone:
        first = knowledge_index(PineconeIndex(), directory=kb_dir)
        total = Passage.objects.count()
        assert (first.added, first.changed, first.removed, first.unchanged) == (total, 0, 0, 0)
        assert pinecone.count("POST", "/indexes") == 1  # the serverless index was created
        stored = pinecone.vectors(NAMESPACE)
        assert len(stored) == total
        assert stored["body-sign-venus-pisces"][1] == {
            "key": "body-sign-venus-pisces",
            "kind": "body_in_sign",
            "body": "venus",
            "sign": "pisces",
            "topics": list(Passage.objects.get(key="body-sign-venus-pisces").topics),
        }
        upserts = pinecone.count("POST", "/vectors/upsert")
        assert upserts == -(-total // 90) and pinecone.count("POST", "/embed") == upserts

        second = knowledge_index(PineconeIndex(), directory=kb_dir)
        assert (second.added, second.changed, second.unchanged) == (0, 0, total)
        assert pinecone.count("POST", "/vectors/upsert") == upserts  # nothing pushed

        rewrite(
            kb_dir / "sign_profiles.yaml",
            lambda items: [
                {**i, "text": "Leo, freshly rewritten."} if i["id"] == "sign-profile-leo" else i
                for i in items
                if i["id"] != "sign-profile-virgo"
            ],
        )
        third = knowledge_index(PineconeIndex(), directory=kb_dir)
        assert (third.added, third.changed, third.removed) == (0, 1, 1)
        assert "sign-profile-virgo" not in pinecone.vectors(NAMESPACE)
        assert pinecone.count("POST", "/vectors/delete") == 1

        index = PineconeIndex()
        hits = index.search("Venus in Pisces", {"kind": "body_in_sign", "body": "venus"}, top_k=3)
        assert len(hits) == 3 and all(hit.key.startswith("body-sign-venus-") for hit in hits)
        assert hits[0].score >= hits[1].score >= hits[2].score
        exact = index.search("Venus in Pisces", {"kind": "body_in_sign", "body": "venus", "sign": "pisces"})
        assert [hit.key for hit in exact] == ["body-sign-venus-pisces"]
        topical = index.search("love", {"kind": "body_in_house", "topics": "love", "key": ["body-house-venus-5"]})
        assert [hit.key for hit in topical] == ["body-house-venus-5"]


@pytest.mark.django_db
def test_pinecone_can_use_openai_embeddings(kb_dir, pinecone_settings, fake_openai):
    pinecone_settings.PINECONE_EMBEDDINGS = "openai"
    pinecone_settings.OPENAI_API_KEY = "sk-test-" + "z" * 24
    pinecone_settings.OPENAI_BASE_URL = fake_openai.base_url
    pinecone_settings.OPENAI_EMBED_DIMENSION = 256
    with FakePinecone(dimension=256) as pinecone:
        knowledge_index(PineconeIndex(), directory=kb_dir)
        assert pinecone.count("POST", "/embed") == 0
        assert len(fake_openai.embedding_calls) >= 2
        assert fake_openai.embedding_calls[0].body["dimensions"] == 256
        hits = PineconeIndex().search("Mars in Aries", {"kind": "body_in_sign", "sign": "aries"}, top_k=20)
        assert {hit.key for hit in hits} == {f"body-sign-{b}-aries" for b in KB_BODIES if b != "north_node"}


@pytest.mark.django_db
def test_generation_reads_passages_from_pinecone(kb, openai_settings, fake_openai, pinecone_settings):
    fake_openai.default = grounded_answer
    with FakePinecone(dimension=256) as pinecone:
        knowledge_index(PineconeIndex())
        before = pinecone.count("POST", "/query")
        forecast = forecast_get_or_generate(date(2025, 6, 20), "leo")
        assert pinecone.count("POST", "/query") > before + 5
        assert forecast.is_ready and forecast.fallback_reason == ""
        assert forecast.generator == "openai" and forecast.passages.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("failure", ["connect", "503"])
def test_pinecone_unreachable_at_generation_falls_back_to_the_local_index(
    kb, openai_settings, fake_openai, pinecone_settings, failure
):
    fake_openai.default = grounded_answer
    with FakePinecone(dimension=256, exists=True) as pinecone:
        pinecone.fail = failure
        forecast = forecast_get_or_generate(date(2025, 6, 20), "scorpio")
        assert forecast is not None and forecast.is_ready and forecast.grounded
        assert "retrieval: pinecone unavailable" in forecast.fallback_reason
        assert "local index" in forecast.fallback_reason
        assert forecast.passages.count() > 3  # the local index answered instead
        # One failure opens the breaker: the other searches did not wait on Pinecone again.
        failed_requests = len(pinecone.requests)
        second = forecast_get_or_generate(date(2025, 6, 20), "taurus")
        assert "pinecone unavailable" in second.fallback_reason
        assert len(pinecone.requests) == failed_requests
    assert remote_breaker.allows() is False
    assert Forecast.objects.filter(generator="openai").count() == 2
    assert local_index().search("x", {"kind": "sign_profile", "sign": "leo"})


@pytest.mark.django_db
def test_a_missing_pinecone_index_is_a_one_line_error(kb, pinecone_settings):
    with FakePinecone(dimension=256, exists=False), pytest.raises(RetrievalError, match="kb_index"):
        PineconeIndex().search("x", {"kind": "sign_profile"})
