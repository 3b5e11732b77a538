"""English -> French sentence pairs split by English sentence, for the translator.

    data = translation_splits()                    # eng-fra-tatoeba-5k.tsv, seed 0
    train, valid, test = data                      # TranslationPairs datasets
    train[0]                                       # ("Go.", "Va !")
    test.references["I'm tired."]                  # every French translation in the file
    test.sources                                   # the distinct English sentences

The file is read by ``text.translation_pairs`` (``eng-fra-tatoeba-5k.tsv``, the 5,000
shortest Tatoeba pairs, or the full manythings.org ``fra.txt``, both
``English<TAB>French<TAB>attribution``; from a path, ``root``, ``$HANDGRAD_DATA`` or the
cache). Many English sentences have several French translations (``Go.`` -> ``Va !``,
``Marche.``, ``Bouge !``). The split is by English sentence: the distinct English
sentences are shuffled with ``seed`` and cut into train / valid / test fractions, and
every pair goes with its English sentence. No English sentence is in two splits, and all
French translations of one English sentence stay together: in the held-out splits they
are the multi-reference set a translation is scored against. The known 5k file is
checked against its sha256 when ``check_sha256=True`` (off by default: an edited copy is
the user's to use).

Left out: tokenisation (handgrad/models/tokenizer.py) and batching (the translator's).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from handgrad.data.dataset import Dataset
from handgrad.data.datasets._files import DataFileError, find_file, search_dirs, sha256_of
from handgrad.data.datasets._splits import DataSplits, seeded_permutation, split_counts
from handgrad.data.datasets.text import TRANSLATION_FILES, translation_pairs

__all__ = ["TranslationPairs", "translation_splits", "TATOEBA_5K_SHA256"]

TATOEBA_5K_SHA256 = "d952b56a181da5270b7bb4ded3f3bbe61e67a9b1de0e0fbc1d46438c71fb55a7"


class TranslationPairs(Dataset):
    """(English, French) string pairs of one split.

    ``sources`` lists the split's distinct English sentences (in split order);
    ``references[english]`` every French translation of it, in file order."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.pairs = list(pairs)
        self.references: dict[str, list[str]] = {}
        for english, french in self.pairs:
            self.references.setdefault(english, []).append(french)
        self.sources = list(self.references)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[str, str]:
        return self.pairs[index]

    def __repr__(self) -> str:
        return (f"TranslationPairs({len(self.pairs)} pairs, {len(self.sources)} English "
                f"sentences)")


def translation_splits(path: str | os.PathLike | None = None, *, root=None,
                       fractions: Sequence[float] = (0.85, 0.05, 0.10), seed: int = 0,
                       max_pairs: int | None = None, check_sha256: bool = False,
                       pairs: Sequence[tuple[str, str]] | None = None) -> DataSplits:
    """Train / valid / test ``TranslationPairs`` split by English sentence (see the module
    docstring). ``fractions`` are of the distinct English sentences, not of the pairs;
    ``pairs`` replaces reading a file (tests)."""
    where = "the given pairs"
    if pairs is None:
        if check_sha256:
            file = Path(path) if path is not None else find_file(TRANSLATION_FILES,
                                                                 search_dirs(root))
            if file is not None and file.name == TRANSLATION_FILES[0]:
                digest = sha256_of(file)
                if digest != TATOEBA_5K_SHA256:
                    raise DataFileError(f"{file}: sha256 {digest} is not that of "
                                        f"eng-fra-tatoeba-5k.tsv ({TATOEBA_5K_SHA256}): a "
                                        f"changed or truncated copy")
        pairs = translation_pairs(path, root=root, max_pairs=max_pairs)
        where = str(path) if path is not None else "eng-fra-tatoeba-5k.tsv / fra.txt"
    groups: dict[str, list[str]] = {}
    for english, french in pairs:
        groups.setdefault(english, []).append(french)
    sources = list(groups)
    if len(sources) < 3:
        raise ValueError(f"translation_splits: {len(sources)} distinct English sentences in "
                         f"{where}; at least 3 are needed for train / valid / test")
    n_train, n_valid, _ = split_counts(len(sources), fractions)
    order = seeded_permutation(len(sources), seed).tolist()
    cuts = order[:n_train], order[n_train:n_train + n_valid], order[n_train + n_valid:]
    splits = [TranslationPairs([(sources[i], fr) for i in part for fr in groups[sources[i]]])
              for part in cuts]
    return DataSplits(*splits, description=(
        f"English-French pairs of {where}: {len(pairs)} pairs, {len(sources)} English "
        f"sentences split {n_train} / {n_valid} / {len(cuts[2])} (seed {seed})"),
        info={"fractions": list(fractions), "seed": seed, "pairs": len(pairs)})
