"""The phrasebook's files are checked at load: a bad entry stops with its file, line and reason."""

import pytest

from forecasts.writing.phrasebook import FAMILIES, PhrasebookError, phrasebook, phrasebook_read


def write(tmp_path, text: str):
    (tmp_path / "bad.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("family: wisdom\nentries: []\n", 1, "unknown family 'wisdom'"),
        ("family: fact\nentries:\n  - for: {shape: nowhere}\n    phrasings: []\n", 3, "shape='nowhere' is not one of"),
        (
            'family: fact\nentries:\n  - for: {shape: ingress}\n    phrasings:\n      - "{Body} enters {sign}."\n',
            5,
            "lacks {area}, {when}",
        ),
        (
            'family: advice\nentries:\n  - for: {topic: love, tone: tense}\n    phrasings:\n      - "Call {name}."\n',
            5,
            "uses {name}",
        ),
        (
            "family: closing\nentries:\n  - for: {tone: blend}\n    phrasings:\n"
            '      - "Keep going."\n      - "Keep   going."\n',
            6,
            "repeats bad.yaml:5",
        ),
        ("family: do\nentries:\n  - for: {tone: blend}\n    phrasings: [\n", 5, "not valid YAML"),
        ("family: do\nentries:\n  - for: {tone: blend}\n", 3, "exactly `for:` and `phrasings:`"),
        (
            'family: do\nentries:\n  - for: {tone: blend}\n    phrasings:\n      - "Rest."\n',
            3,
            "has 1 phrasings; a do entry needs 12",
        ),
    ],
)
def test_a_bad_entry_names_its_file_line_and_reason(tmp_path, text, line, reason):
    with pytest.raises(PhrasebookError) as caught:
        phrasebook_read(write(tmp_path, text))
    error = caught.value
    assert error.path.name == "bad.yaml" and error.line == line, str(error)
    assert reason in error.reason, str(error)
    assert str(error).startswith(f"{tmp_path / 'bad.yaml'}:{line}: ")


def test_a_missing_entry_is_named(tmp_path):
    phrasings = "".join(f'      - "Rest well, number {n}."\n' for n in range(12))
    text = f"family: do\nentries:\n  - for: {{tone: blend}}\n    phrasings:\n{phrasings}"
    with pytest.raises(PhrasebookError, match=r"no \w+ entry for"):
        phrasebook_read(write(tmp_path, text))


def test_the_shipped_phrasebook_is_complete_and_large():
    book = phrasebook()
    counts = book.families()
    for name, family in FAMILIES.items():
        combinations = 1
        for values in family.keys.values():
            combinations *= len(values)
        assert counts.get(name) == combinations, name
    assert len(book) >= 1500
