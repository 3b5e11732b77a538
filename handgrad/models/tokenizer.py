"""Word-level tokenizer for the translator: text <-> token ids, saved as JSON with the model.

    tok = WordTokenizer.fit(sentences, min_frequency=1, case="truecase")
    ids = tok.encode("I'm tired.")              # [bos, i, 'm, tired, ., eos]
    tok.decode(ids)                             # "I'm tired."
    tok.encode_batch(sentences).unknown         # how many words were mapped to <unk>
    WordTokenizer.from_json(tok.to_json())      # the same tokenizer

How text becomes words (`WordTokenizer.split`):

1. normalise: typographic apostrophes become ``'``; no-break, narrow and thin spaces
   (French typography: ``Va !``) become plain spaces.
2. punctuation is split from words (``tired.`` -> ``tired`` ``.``); digits and letters
   stay together.
3. French elisions are split after the apostrophe (``j'ai`` -> ``j'`` ``ai``,
   ``qu'il`` -> ``qu'`` ``il``), English contractions before it (``I'm`` -> ``I`` ``'m``,
   ``don't`` -> ``do`` ``n't``), and French clitic pronouns joined by a hyphen are split
   off (``arrête-toi`` -> ``arrête`` ``-toi``, ``va-t-il`` -> ``va`` ``-t`` ``-il``), so
   ``toi`` after a verb shares statistics across verbs. Other hyphenated words
   (``peut-être``) stay whole.
4. case (``case=``): ``"keep"`` as written; ``"lower"`` everything lower-cased (decode
   then capitalises the first letter only, so ``Tom`` comes back as ``tom``);
   ``"truecase"`` (default) lower-cases only a sentence's first word, and only when that
   word is mostly written lower-case elsewhere in the training text (``Je`` -> ``je``,
   ``Tom`` stays ``Tom``); decode capitalises the first letter.

`decode` joins words back with French or English spacing (a space before ``! ? : ;``
for French, none before ``. ,``; elisions, contractions and hyphenated clitics are
glued back). Special tokens: ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2, ``<unk>`` = 3.
Words seen fewer than ``min_frequency`` times when fitting, and words never seen, become
``<unk>``: `encode_batch` counts them and `unknown_words` lists them, so a caller can
report them; nothing is dropped silently.

Left out: subword (BPE) and character tokenisation (the translator docs measure the
word-level choice against them).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["WordTokenizer", "EncodedBatch", "PAD", "BOS", "EOS", "UNK", "SPECIALS"]

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
CASES = ("keep", "lower", "truecase")

_SPACES = re.compile(r"[\u00a0\u2009\u202f\u2007\u200b\s]+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
# a word (letters/digits with inner apostrophes or hyphens) or one punctuation mark
_PIECES = re.compile(r"\w+(?:['-]\w+)*'?|[^\w\s]")
_ELISION = re.compile(r"^((?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu|presqu)')(\w.*)$",
                      re.IGNORECASE)
_CONTRACTION = re.compile(r"^(\w+?)(n't|'m|'s|'re|'ve|'ll|'d)$", re.IGNORECASE)
_CLITICS = {"moi", "toi", "lui", "elle", "elles", "il", "ils", "nous", "vous", "le", "la",
            "les", "en", "y", "ce", "on", "tu", "je", "t", "leur", "m"}
_SPACE_BEFORE_FR = {"!", "?", ":", ";", "»"}
_NO_SPACE_BEFORE = {".", ",", ")", "]", "%", "..."}
_NO_SPACE_AFTER = {"(", "[", "$"}


def _split_word(word: str) -> list[str]:
    """One word of _PIECES into its tokens (elision, contraction, hyphenated clitics)."""
    match = _ELISION.match(word)
    if match:
        return [match.group(1), *_split_word(match.group(2))]
    match = _CONTRACTION.match(word)
    if match:
        return [match.group(1), match.group(2)]
    if "-" in word:
        parts = word.split("-")
        tail = []
        while len(parts) > 1 and parts[-1].lower() in _CLITICS:
            tail.insert(0, "-" + parts.pop())
        return ["-".join(parts), *tail]
    return [word]


def normalize(text: str) -> str:
    """Typographic apostrophes to ``'``, every kind of space to one plain space."""
    return _SPACES.sub(" ", text.translate(_APOSTROPHES)).strip()


def split_words(text: str) -> list[str]:
    """The tokens of ``text`` before any case change or vocabulary look-up."""
    words = []
    for piece in _PIECES.findall(normalize(text)):
        words.extend(_split_word(piece) if piece[0].isalnum() or piece[0] == "_" else [piece])
    return words


@dataclass
class EncodedBatch:
    """Sentences encoded by `WordTokenizer.encode_batch`."""

    ids: list[list[int]]  # one id list per sentence (with <bos> / <eos> when asked)
    unknown: int  # how many words became <unk>
    words: int  # how many words there were in all (specials not counted)
    unknown_words: Counter  # the words that became <unk>, with their counts

    @property
    def unknown_rate(self) -> float:
        return self.unknown / self.words if self.words else 0.0


class WordTokenizer:
    """Word-level vocabulary with the special tokens <pad>=0, <bos>=1, <eos>=2, <unk>=3."""

    def __init__(self, words: Sequence[str], *, case: str = "truecase",
                 lower_first: Iterable[str] = (), language: str = "fr",
                 min_frequency: int = 1) -> None:
        if case not in CASES:
            raise ValueError(f"WordTokenizer: case must be one of {', '.join(CASES)}, got "
                             f"{case!r}")
        if language not in ("en", "fr"):
            raise ValueError(f"WordTokenizer: language must be 'en' or 'fr', got {language!r}")
        words = [w for w in words if w not in SPECIALS]
        if len(set(words)) != len(words):
            raise ValueError("WordTokenizer: the word list has duplicates")
        self.case, self.language, self.min_frequency = case, language, min_frequency
        self.lower_first = set(lower_first)  # sentence-initial words that truecase lowers
        self.itos = [*SPECIALS, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, sentences: Iterable[str], *, min_frequency: int = 1, case: str = "truecase",
            language: str = "fr", max_size: int | None = None) -> WordTokenizer:
        """The vocabulary of ``sentences``: words seen at least ``min_frequency`` times, most
        frequent first (ties alphabetical), at most ``max_size`` of them."""
        if min_frequency < 1:
            raise ValueError(f"WordTokenizer.fit: min_frequency must be >= 1, got "
                             f"{min_frequency}")
        split = [split_words(s) for s in sentences]
        lower_first = set()
        if case == "truecase":
            inner = Counter(w for words in split for w in words[1:])
            for first in {words[0] for words in split if words}:
                low = first.lower()
                if low != first and inner[low] >= inner[first]:
                    lower_first.add(first)
        tokenizer = cls([], case=case, lower_first=lower_first, language=language,
                        min_frequency=min_frequency)
        counts = Counter(w for words in split for w in tokenizer._cased(words))
        kept = sorted((w for w, n in counts.items() if n >= min_frequency),
                      key=lambda w: (-counts[w], w))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(kept, case=case, lower_first=lower_first, language=language,
                   min_frequency=min_frequency)

    def _cased(self, words: list[str]) -> list[str]:
        if self.case == "lower":
            return [w.lower() for w in words]
        if self.case == "truecase" and words and words[0] in self.lower_first:
            return [words[0].lower(), *words[1:]]
        return words

    # ------------------------------------------------------------------ encode / decode
    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other) -> bool:
        return isinstance(other, WordTokenizer) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (f"WordTokenizer({len(self)} tokens, language={self.language!r}, "
                f"case={self.case!r}, min_frequency={self.min_frequency})")

    def tokens(self, text: str) -> list[str]:
        """The words of ``text`` after the case rule (before the vocabulary look-up)."""
        return self._cased(split_words(text))

    def encode(self, text: str, *, add_bos: bool = True, add_eos: bool = True) -> list[int]:
        """Token ids of ``text`` (unknown words -> <unk>; see encode_batch to count them)."""
        ids = [self.stoi.get(w, self.unk_id) for w in self.tokens(text)]
        return [self.bos_id] * add_bos + ids + [self.eos_id] * add_eos

    def encode_batch(self, texts: Iterable[str], *, add_bos: bool = True,
                     add_eos: bool = True) -> EncodedBatch:
        """`encode` of each text, with the count of words that became <unk>."""
        all_ids, unknown, total = [], Counter(), 0
        for text in texts:
            words = self.tokens(text)
            total += len(words)
            unknown.update(w for w in words if w not in self.stoi)
            all_ids.append([self.bos_id] * add_bos + [self.stoi.get(w, self.unk_id)
                                                      for w in words] + [self.eos_id] * add_eos)
        return EncodedBatch(all_ids, sum(unknown.values()), total, unknown)

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` that are not in the vocabulary (they encode as <unk>)."""
        return [w for w in self.tokens(text) if w not in self.stoi]

    def decode(self, ids: Iterable[int], *, keep_specials: bool = False) -> str:
        """The text of ``ids``: stops at <eos>, skips <pad> / <bos>, writes <unk> as is."""
        words = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise IndexError(f"WordTokenizer.decode: id {i} is outside the vocabulary "
                                 f"of {len(self.itos)} tokens")
            if i == self.eos_id and not keep_specials:
                break
            if i in (self.pad_id, self.bos_id) and not keep_specials:
                continue
            words.append(self.itos[i])
        return self.join(words)

    def join(self, words: Sequence[str]) -> str:
        """Words back into text with this language's spacing (see the module docstring)."""
        text = ""
        glue_next = True
        for word in words:
            glue = (glue_next or word in _NO_SPACE_BEFORE or word.startswith("-")
                    or (word.startswith("'") and len(word) > 1) or word.lower() == "n't"
                    or (self.language == "en" and word in _SPACE_BEFORE_FR))
            text += word if glue else " " + word
            glue_next = word.endswith("'") and len(word) > 1 or word in _NO_SPACE_AFTER
        if self.case != "keep" and text:
            text = text[0].upper() + text[1:]
        return text

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict:
        return {"type": "word", "language": self.language, "case": self.case,
                "min_frequency": self.min_frequency, "lower_first": sorted(self.lower_first),
                "words": self.itos[len(SPECIALS):]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> WordTokenizer:
        if not isinstance(data, dict) or data.get("type") != "word" or "words" not in data:
            raise ValueError("WordTokenizer.from_dict: not a saved word tokenizer (expected "
                             "a dict with type 'word' and a words list)")
        return cls(data["words"], case=data["case"], lower_first=data["lower_first"],
                   language=data["language"], min_frequency=data["min_frequency"])

    @classmethod
    def from_json(cls, text: str) -> WordTokenizer:
        return cls.from_dict(json.loads(text))
