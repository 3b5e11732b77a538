"""Text sources for the sequence models: a character corpus and English-French pairs.

- ``tiny_shakespeare`` / ``char_corpus``: a character-level corpus from a local file, or
  tiny-shakespeare (1,115,394 characters, 65 distinct) found as ``tinyshakespeare.txt``
  in ``root`` / ``$HANDGRAD_DATA`` / the cache, or downloaded (sha256-checked) with
  ``download=True``. ``CharCorpus`` maps characters to ids and back and cuts the text
  into contiguous train / valid / test parts; ``CharSequenceDataset`` serves
  ``(x, y)`` windows (``y`` is ``x`` shifted by one character) that feed a DataLoader.
- ``translation_pairs``: (English, French) sentence pairs from a tab-separated file in
  the Tatoeba / manythings.org format (``English<TAB>French[<TAB>attribution]``), found
  as ``eng-fra-tatoeba-5k.tsv`` or ``fra.txt``. manythings.org publishes no checksum and
  turns away scripted downloads, so there is no default URL: pass ``url`` and ``sha256``
  of a copy you host, or download ``fra-eng.zip`` by hand (the error says how).

Word-level tokenisation and vocabularies for translation belong to the models that use
them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from handgrad.data._tensors import wrap
from handgrad.data.dataset import Dataset
from handgrad.data.datasets._files import (
    DATA_ENV_VAR,
    DataFileError,
    download_dir,
    download_file,
    find_file,
    missing_data_error,
)
from handgrad.data.datasets._files import search_dirs as _search_dirs
from handgrad.data.datasets._splits import DataSplits, split_counts

TINY_SHAKESPEARE_URL = ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                        "tinyshakespeare/input.txt")
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINY_SHAKESPEARE_FILE = "tinyshakespeare.txt"
TRANSLATION_FILES = ("eng-fra-tatoeba-5k.tsv", "fra.txt")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataFileError(f"{path}: not UTF-8 text ({error})") from error


def tiny_shakespeare(root: str | os.PathLike | None = None, *, download: bool = False,
                     url: str = TINY_SHAKESPEARE_URL,
                     sha256: str = TINY_SHAKESPEARE_SHA256) -> str:
    """The tiny-shakespeare text (1,115,394 characters of Shakespeare's plays, 65 distinct
    characters), as one string.

    Source: karpathy/char-rnn ``data/tinyshakespeare/input.txt`` (public domain text).
    Looked for as ``tinyshakespeare.txt`` (or ``input.txt`` under ``tinyshakespeare/``);
    ``download=True`` fetches it into the cache (or ``root``) and checks its sha256."""
    dirs = _search_dirs(root)
    names = [TINY_SHAKESPEARE_FILE, "tinyshakespeare/input.txt", "tiny_shakespeare.txt"]
    path = find_file(names, dirs)
    if path is None and download:
        path = download_file(url, download_dir(root) / TINY_SHAKESPEARE_FILE, sha256)
    if path is None:
        raise missing_data_error(
            "tiny-shakespeare", names, dirs,
            f"add --download to `handgrad train char-rnn` (in Python: "
            f"tiny_shakespeare(download=True) or char_corpus(download=True)) to fetch it "
            f"from {url} into {download_dir(root)}; or set {DATA_ENV_VAR} to a directory "
            f"holding {TINY_SHAKESPEARE_FILE}; or download that file yourself and save it "
            f"as {TINY_SHAKESPEARE_FILE} in one of the directories above.")
    return _read_text(path)


class CharCorpus:
    """A text and its character vocabulary: ``chars`` (sorted), ``stoi`` / ``itos``.

    ``encode(str) -> int64 tensor`` and ``decode(ids) -> str`` convert; ``split(fractions)``
    cuts the encoded text into contiguous (train, valid, test) id tensors -- contiguous,
    not shuffled, so the held-out text is text the model never saw."""

    def __init__(self, text: str) -> None:
        if not text:
            raise ValueError("CharCorpus: the text is empty")
        self.text = text
        self.chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.itos = dict(enumerate(self.chars))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.text)

    def encode(self, text: str) -> torch.Tensor:
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            raise KeyError(f"CharCorpus.encode: characters not in the vocabulary: {unknown!r}")
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.int64)

    def decode(self, ids) -> str:
        data = getattr(ids, "data", ids)
        values = data.tolist() if isinstance(data, torch.Tensor) else list(data)
        return "".join(self.itos[int(i)] for i in values)

    def split(self, fractions: Sequence[float] = (0.9, 0.05, 0.05)):
        """(train, valid, test) id tensors: consecutive parts of the text."""
        ids = self.encode(self.text)
        n_train, n_valid, _ = split_counts(len(ids), fractions)
        return ids[:n_train], ids[n_train:n_train + n_valid], ids[n_train + n_valid:]

    def datasets(self, block_size: int,
                 fractions: Sequence[float] = (0.9, 0.05, 0.05)) -> DataSplits:
        """``CharSequenceDataset``s of ``block_size`` over each part of ``split``."""
        parts = [CharSequenceDataset(p, block_size) for p in self.split(fractions)]
        return DataSplits(*parts, classes=list(self.chars),
                          description=f"character windows of {block_size}, vocabulary "
                                      f"{self.vocab_size}")


class CharSequenceDataset(Dataset):
    """Windows of ``block_size`` ids: item ``i`` is ``(ids[i : i+T], ids[i+1 : i+T+1])``,
    the input and the next-character targets, both int64 Tensors of shape ``(T,)``."""

    def __init__(self, ids: torch.Tensor, block_size: int) -> None:
        ids = getattr(ids, "data", ids)
        if block_size < 1:
            raise ValueError(f"CharSequenceDataset: block_size must be >= 1, got {block_size}")
        self.ids = ids
        self.block_size = block_size

    def __len__(self) -> int:
        return max(0, self.ids.shape[0] - self.block_size)

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"CharSequenceDataset: index {index} out of range for "
                             f"{len(self)} windows")
        index %= len(self)
        window = self.ids[index:index + self.block_size + 1]
        return wrap(window[:-1]), wrap(window[1:])


def char_corpus(path: str | os.PathLike | None = None, *, root=None,
                download: bool = False) -> CharCorpus:
    """A ``CharCorpus`` of the UTF-8 text file ``path``, or of tiny-shakespeare when no
    path is given (see ``tiny_shakespeare`` for where it is looked for)."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise missing_data_error("char_corpus", [path.name], [path.parent],
                                     "pass the path of an existing UTF-8 text file, or no "
                                     "path for tiny-shakespeare.")
        return CharCorpus(_read_text(path))
    return CharCorpus(tiny_shakespeare(root, download=download))


def translation_pairs(path: str | os.PathLike | None = None, *, root=None,
                      max_pairs: int | None = None, download: bool = False,
                      url: str | None = None, sha256: str | None = None
                      ) -> list[tuple[str, str]]:
    """(English, French) pairs from a tab-separated file, in file order.

    Format (Tatoeba via manythings.org): one pair per line, ``English<TAB>French``, an
    optional third column (the CC-BY attribution) ignored; blank lines skipped. Without
    ``path``, looks for ``eng-fra-tatoeba-5k.tsv`` (5,000 short pairs) or ``fra.txt`` (the
    full manythings export) in ``root`` / ``$HANDGRAD_DATA`` / the cache. ``download=True``
    needs ``url`` and ``sha256`` (see the module docstring). Shuffle and split with
    ``handgrad.data.random_split`` and a seeded generator."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise missing_data_error("translation_pairs", [path.name], [path.parent],
                                     "pass the path of an existing tab-separated file.")
    else:
        dirs = _search_dirs(root)
        path = find_file(TRANSLATION_FILES, dirs)
        if path is None and download:
            if not url or not sha256:
                raise ValueError("translation_pairs(download=True) needs url= and sha256= of "
                                 "a tab-separated file you host: manythings.org publishes no "
                                 "checksum to verify its download against")
            path = download_file(url, download_dir(root) / TRANSLATION_FILES[0], sha256)
        if path is None:
            raise missing_data_error(
                "English-French pairs", TRANSLATION_FILES, dirs,
                "download fra-eng.zip from https://www.manythings.org/anki/ (Tatoeba "
                "sentences, CC-BY 2.0 France), unzip it and put fra.txt in one of the "
                "directories above, or pass its path; or point HANDGRAD_DATA at a directory "
                "holding eng-fra-tatoeba-5k.tsv.")
    pairs = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) < 2:
            raise DataFileError(f"{path}, line {number}: expected English<TAB>French, got "
                                f"{line[:60]!r}")
        pairs.append((columns[0].strip(), columns[1].strip()))
        if max_pairs is not None and len(pairs) >= max_pairs:
            break
    return pairs
