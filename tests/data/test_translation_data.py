"""translation_splits (split by English sentence, multi-reference sets, files, errors) and the
translator's word tokenizer (splitting, round trips, <unk> counting, JSON, case rules)."""

import os
from pathlib import Path

import pytest

from handgrad.data.datasets import DataFileError, TranslationPairs, translation_splits
from handgrad.models.tokenizer import WordTokenizer, split_words

SHARED = Path(os.environ.get("HANDGRAD_DATA", "/work/shared/data")) / "eng-fra-tatoeba-5k.tsv"
needs_tatoeba = pytest.mark.skipif(not SHARED.is_file(),
                                   reason=f"{SHARED} not found (set HANDGRAD_DATA)")

PAIRS = [("Go.", "Va !"), ("Go.", "Marche."), ("Go.", "Bouge !"), ("Hi.", "Salut !"),
         ("Hi.", "Salut."), ("Run!", "Cours !"), ("Run!", "Courez !"), ("Wait.", "Attends."),
         ("I'm tired.", "Je suis fatigué."), ("I'm tired.", "Je suis fatiguée."),
         ("Get up.", "Lève-toi."), ("Don't go.", "N'y va pas."), ("Tom left.", "Tom est parti."),
         ("Who is it?", "Qui est-ce ?"), ("I see.", "Je vois."), ("Help!", "À l'aide !")]


def _check_disjoint(splits, pairs):
    parts = list(splits)
    english = [set(p.sources) for p in parts]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not english[i] & english[j], f"splits {i} and {j} share English sentences"
    assert sum(len(p) for p in parts) == len(pairs), "every pair is in exactly one split"
    for part in parts:  # every French reference of a sentence stays with it
        for source, refs in part.references.items():
            assert refs == [f for e, f in pairs if e == source]


def test_split_by_english_sentence_keeps_references_together():
    splits = translation_splits(pairs=PAIRS, fractions=(0.6, 0.2, 0.2), seed=3)
    _check_disjoint(splits, PAIRS)
    assert [len(p.sources) for p in splits] == [7, 2, 2]
    assert isinstance(splits.train, TranslationPairs)
    english, french = splits.train[0]
    assert french in splits.train.references[english]


def test_split_is_seeded():
    a = translation_splits(pairs=PAIRS, seed=1, fractions=(0.6, 0.2, 0.2))
    b = translation_splits(pairs=PAIRS, seed=1, fractions=(0.6, 0.2, 0.2))
    c = translation_splits(pairs=PAIRS, seed=2, fractions=(0.6, 0.2, 0.2))
    assert a.test.pairs == b.test.pairs
    assert [p.sources for p in a] != [p.sources for p in c]


@needs_tatoeba
def test_tatoeba_5k_split():
    splits = translation_splits(SHARED, check_sha256=True)
    pairs = [pair for part in splits for pair in part]
    _check_disjoint(splits, pairs)
    assert len(pairs) == 5000
    assert [len(p.sources) for p in splits] == [2207, 130, 260]
    assert max(len(refs) for refs in splits.test.references.values()) > 1  # multi-reference


def test_full_manythings_format_and_errors(tmp_path):
    fra = tmp_path / "fra.txt"
    lines = [f"{e}\t{f}\tCC-BY 2.0 (France) Attribution: tatoeba.org #1 (a) & #2 (b)"
             for e, f in PAIRS]
    fra.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    splits = translation_splits(fra, fractions=(0.6, 0.2, 0.2))
    _check_disjoint(splits, PAIRS)
    assert translation_splits(root=tmp_path, fractions=(0.6, 0.2, 0.2)).test.pairs == \
        splits.test.pairs  # found as fra.txt in root
    bad = tmp_path / "bad.tsv"
    bad.write_text("Go. Va !\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="line 1: expected English<TAB>French"):
        translation_splits(bad)
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        translation_splits(tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="at least 3 are needed"):
        translation_splits(pairs=PAIRS[:3])
    changed = tmp_path / "eng-fra-tatoeba-5k.tsv"
    changed.write_text("Go.\tVa !\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="sha256"):
        translation_splits(changed, check_sha256=True)


# ---------------------------------------------------------------------------- tokenizer
@pytest.mark.parametrize("text, words", [
    ("I'm tired.", ["I", "'m", "tired", "."]),
    ("Don't go!", ["Do", "n't", "go", "!"]),
    ("J'ai faim.", ["J'", "ai", "faim", "."]),
    ("Qu’est-ce que c’est\u202f?", ["Qu'", "est", "-ce", "que", "c'", "est", "?"]),
    ("Lève-toi.", ["Lève", "-toi", "."]),
    ("Va-t-il venir ?", ["Va", "-t", "-il", "venir", "?"]),
    ("Peut-être aujourd'hui.", ["Peut-être", "aujourd'hui", "."]),
    ("J'ai 19 ans.", ["J'", "ai", "19", "ans", "."]),
])
def test_split_words(text, words):
    assert split_words(text) == words


def test_round_trip_and_case_rules():
    french = [f for _, f in PAIRS] + ["Je vois Tom.", "Il voit Tom."]
    tok = WordTokenizer.fit(french)
    for sentence in french:  # decode(encode(s)) == s up to the typographic spaces
        assert tok.decode(tok.encode(sentence)) == sentence
    assert tok.tokens("Je vois.")[0] == "je"  # truecase: mostly lower-case elsewhere
    assert tok.tokens("Tom est parti.")[0] == "Tom"  # capitalised elsewhere: kept
    lower = WordTokenizer.fit(french, case="lower")
    assert lower.decode(lower.encode("Tom est parti.")) == "Tom est parti."
    assert lower.decode(lower.encode("Je vois Tom.")) == "Je vois tom."  # the price
    english = WordTokenizer.fit([e for e, _ in PAIRS], language="en")
    assert english.decode(english.encode("Don't go.")) == "Don't go."
    assert english.decode(english.encode("Who is it?")) == "Who is it?"


def test_unknown_words_are_counted_not_dropped():
    tok = WordTokenizer.fit(["Je vois.", "Je vois Tom.", "Tom vois."], min_frequency=2)
    ids = tok.encode("Je vois Marie.")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.unk_id in ids and len(ids) == 6  # <bos> je vois <unk> . <eos>
    assert tok.unknown_words("Je vois Marie et Paul.") == ["Marie", "et", "Paul"]
    batch = tok.encode_batch(["Je vois Marie.", "Paul vois Marie."])
    assert batch.unknown == 3 and batch.words == 8
    assert batch.unknown_words == {"Marie": 2, "Paul": 1}
    assert tok.decode(ids) == "Je vois <unk>."
    with pytest.raises(IndexError, match="outside the vocabulary"):
        tok.decode([len(tok)])


def test_json_round_trip_and_errors():
    tok = WordTokenizer.fit([f for _, f in PAIRS], min_frequency=1, case="truecase")
    again = WordTokenizer.from_json(tok.to_json())
    assert again == tok and again.itos == tok.itos and again.lower_first == tok.lower_first
    assert tok.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    with pytest.raises(ValueError, match="not a saved word tokenizer"):
        WordTokenizer.from_dict({"type": "bpe"})
    with pytest.raises(ValueError, match="case must be one of"):
        WordTokenizer.fit(["a"], case="upper")
    with pytest.raises(ValueError, match="min_frequency must be >= 1"):
        WordTokenizer.fit(["a"], min_frequency=0)
