"""Datasets: synthetic problems, bundled real data, MNIST IDX files, text sources, the
look-up order and the errors for missing or corrupt files. No test uses the network:
downloads are exercised with file:// URLs."""

import gzip
import hashlib
import importlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from handgrad import data as hd
from handgrad.data import datasets as D

# The package exports the function mnist(), which hides the module of the same name.
mnist_module = importlib.import_module("handgrad.data.datasets.mnist")

SHARED_DATA = Path(os.environ.get("HANDGRAD_DATA")
                   or Path(__file__).resolve().parents[3] / "shared" / "data")


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No HANDGRAD_DATA, and a private, empty cache directory."""
    monkeypatch.delenv("HANDGRAD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def all_rows(splits):
    return [torch.cat([s.tensors[i] for s in splits]) for i in range(2)]


# ---------------------------------------------------------------- synthetic

SYNTHETIC = {
    "clusters": (D.clusters, 400, 4),
    "circles": (D.circles, 400, 2),
    "moons": (D.moons, 400, 2),
    "spirals": (D.spirals, 300, 3),
}


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_synthetic_classification(name):
    make, n, n_classes = SYNTHETIC[name]
    splits = make()
    train, valid, test = splits
    assert (len(train), len(valid), len(test)) == (n * 8 // 10, n // 10, n // 10)
    x, y = all_rows(splits)
    assert x.shape == (n, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [n // n_classes] * n_classes
    assert len(splits.classes) == n_classes
    again = make()
    assert torch.equal(again.train.tensors[0], train.tensors[0])  # seeded
    assert not torch.equal(make(seed=1).train.tensors[0], train.tensors[0])
    # splits are disjoint and together hold every point once (spiral arms share (0, 0))
    assert torch.unique(torch.cat([x, y[:, None].float()], 1), dim=0).shape[0] == n
    batch = next(iter(hd.DataLoader(train, batch_size=16, shuffle=True)))
    assert batch[0].shape == (16, 2)


def test_clusters_geometry():
    x, y = all_rows(D.clusters())
    centers = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])
    for label in range(4):
        points = x[y == label]
        assert torch.allclose(points.mean(0), centers[label], atol=0.25)
        assert abs(points.std(0).mean().item() - 0.8) < 0.1


def test_circles_and_moons_geometry():
    x, y = all_rows(D.circles(noise=0.0))
    radius = x.norm(dim=1)
    assert torch.allclose(radius[y == 0], torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(radius[y == 1], torch.tensor(0.5), atol=1e-5)
    x, y = all_rows(D.moons(noise=0.0))
    assert torch.allclose(x[y == 0].norm(dim=1), torch.tensor(1.0), atol=1e-5)
    assert (x[y == 0][:, 1] >= -1e-6).all() and (x[y == 1][:, 1] <= 0.5 + 1e-6).all()


def test_parabola():
    splits = D.parabola(n=1000, noise=0.5)
    x, y = all_rows(splits)
    assert x.shape == y.shape == (1000, 1) and x.dtype == y.dtype == torch.float32
    assert x.min() >= -3 and x.max() <= 3
    assert abs((y - x * x).std().item() - 0.5) < 0.05
    assert torch.equal(D.parabola(noise=0.0).train.tensors[1],
                       D.parabola(noise=0.0).train.tensors[0] ** 2)


def test_fractions_are_checked():
    assert [len(s) for s in D.clusters(fractions=(1.0, 0.0, 0.0))] == [400, 0, 0]
    with pytest.raises(ValueError, match="sum to 1"):
        D.clusters(fractions=(0.5, 0.1, 0.1))


# ---------------------------------------------------------------- bundled real data

def test_digits():
    splits = D.digits()
    assert [len(s) for s in splits] == [1437, 180, 180]
    x, y = all_rows(splits)
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    assert x.min() == 0 and x.max() == 1
    assert sorted(torch.unique(y).tolist()) == list(range(10))
    assert D.digits(flatten=True).train.tensors[0].shape == (1437, 64)


def test_mnist5k_is_shuffled_before_splitting():
    splits = D.mnist5k()
    assert [len(s) for s in splits] == [4000, 500, 500]
    x, y = all_rows(splits)
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() < x.max() <= 1
    assert torch.bincount(y).tolist() == [500] * 10
    for split in splits:  # sorted-by-label rows cut without a shuffle would miss classes
        counts = torch.bincount(split.tensors[1], minlength=10)
        assert (counts > 0.05 * len(split)).all(), counts
    assert D.mnist5k(flatten=True, seed=3).test.tensors[0].shape == (500, 784)


# ---------------------------------------------------------------- MNIST from IDX files

def idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist(directory: Path, n_train=30, n_test=10, compress=True, seed=0) -> dict:
    """Tiny MNIST-format files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        data = idx_bytes(array, 0x08)
        if compress:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_from_root(clean_env, compress):
    arrays = write_mnist(clean_env / "files", compress=compress)
    splits = D.mnist(clean_env / "files", valid_size=5)
    assert [len(s) for s in splits] == [25, 5, 10]
    x, y = all_rows([splits.train, splits.valid])
    assert x.shape == (30, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    order = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float() / 255
    assert torch.equal(splits.valid.tensors[0][:, 0], expected[order[:5]])
    assert torch.equal(splits.test.tensors[1],
                       torch.from_numpy(arrays["t10k-labels-idx1-ubyte"]).long())
    assert D.mnist(clean_env / "files", valid_size=0, flatten=True).train.tensors[0].shape \
        == (30, 784)


def test_mnist_lookup_order(clean_env, monkeypatch):
    write_mnist(clean_env / "xdg" / "handgrad" / "mnist", n_train=12)  # the cache
    assert len(D.mnist(valid_size=2).train) == 10
    write_mnist(clean_env / "shared" / "MNIST" / "raw", n_train=14)  # torchvision's layout
    monkeypatch.setenv("HANDGRAD_DATA", str(clean_env / "shared"))
    assert len(D.mnist(valid_size=2).train) == 12  # HANDGRAD_DATA comes before the cache
    write_mnist(clean_env / "mine", n_train=16)
    assert len(D.mnist(clean_env / "mine", valid_size=2).train) == 14  # root comes first


def test_mnist_missing_says_where_and_how(clean_env, monkeypatch):
    monkeypatch.setenv("HANDGRAD_DATA", str(clean_env / "shared"))
    with pytest.raises(D.MissingDataError) as error:
        D.mnist()
    message = str(error.value)
    for expected in ("train-images-idx3-ubyte.gz", str(clean_env / "shared"),
                     str(clean_env / "shared" / "mnist"), str(clean_env / "xdg" / "handgrad"),
                     "HANDGRAD_DATA is set", "download=True", "ossci-datasets", "mnist5k"):
        assert expected in message, (expected, message)
    assert isinstance(error.value, FileNotFoundError)


def test_mnist_download_checks_sha256_and_uses_mirrors(clean_env, monkeypatch):
    source = clean_env / "mirror"
    write_mnist(source)
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.iterdir()}
    monkeypatch.setattr(mnist_module, "MNIST_SHA256", sha)
    mirrors = [f"file://{clean_env}/no-such-mirror/", f"file://{source}/"]
    splits = D.mnist(download=True, mirrors=mirrors, valid_size=5)
    assert len(splits.train) == 25
    cached = clean_env / "xdg" / "handgrad" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(sha)
    assert len(D.mnist(valid_size=5).train) == 25  # now found in the cache, no download

    root = clean_env / "elsewhere"
    monkeypatch.setattr(mnist_module, "MNIST_SHA256", {k: "0" * 64 for k in sha})
    with pytest.raises(OSError, match="sha256 mismatch") as error:
        D.mnist(root, download=True, mirrors=mirrors)
    assert "no-such-mirror" in str(error.value)  # every mirror tried is listed
    assert not [p for p in root.rglob("*") if p.is_file()]  # nothing half-downloaded kept


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-100], "truncated"),
    (lambda b: b + b"\0", "longer than its header"),
    (lambda b: b"\x12\x34" + b[2:], "not an IDX file"),
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b"", "not an IDX file"),
    (lambda b: b[:4] + b"\xff\xff\xff\xff" + b[8:], "truncated.*4294967295"),  # a size bit flipped
])
def test_corrupt_idx_files(clean_env, damage, message):
    arrays = write_mnist(clean_env / "files", compress=False)
    path = clean_env / "files" / "t10k-images-idx3-ubyte"
    path.write_bytes(damage(idx_bytes(arrays["t10k-images-idx3-ubyte"], 0x08)))
    with pytest.raises(D.DataFileError, match=message) as error:
        D.mnist(clean_env / "files")
    assert str(path) in str(error.value)


def test_corrupt_gzip_and_mismatched_counts(clean_env):
    write_mnist(clean_env / "files")
    path = clean_env / "files" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(D.DataFileError, match="gzip data is corrupt or truncated"):
        D.mnist(clean_env / "files")
    write_mnist(clean_env / "files2")
    (clean_env / "files2" / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(3, np.uint8), 0x08)))
    with pytest.raises(D.DataFileError, match="same N"):
        D.mnist(clean_env / "files2")


@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                         (np.int32, 0x0C), (np.float32, 0x0D),
                                         (np.float64, 0x0E)])
def test_read_idx_types(tmp_path, dtype, code):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    (tmp_path / "a.idx").write_bytes(idx_bytes(array, code))
    out = D.read_idx(tmp_path / "a.idx")
    assert out.dtype == np.dtype(dtype) and np.array_equal(out, array)


# ---------------------------------------------------------------- downloads

def test_download_file(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(3000))
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    out = D.download_file(f"file://{source}", tmp_path / "sub" / "dest.bin", sha, quiet=True)
    assert out.read_bytes() == source.read_bytes()
    with pytest.raises(OSError, match="sha256 mismatch") as error:
        D.download_file(f"file://{source}", tmp_path / "bad.bin", "f" * 64, quiet=True)
    assert "bad.bin" in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.bin", "sub"]  # no leftovers


# ---------------------------------------------------------------- text

def test_char_corpus_from_file(tmp_path):
    text = "hello world\nhow are you?\n" * 20
    path = tmp_path / "corpus.txt"
    path.write_text(text)
    corpus = D.char_corpus(path)
    assert corpus.chars == sorted(set(text)) and corpus.vocab_size == len(set(text))
    assert corpus.decode(corpus.encode("how are")) == "how are"
    train, valid, test = corpus.split((0.8, 0.1, 0.1))
    assert corpus.decode(torch.cat([train, valid, test])) == text  # contiguous parts
    with pytest.raises(KeyError, match="not in the vocabulary"):
        corpus.encode("Z")
    splits = corpus.datasets(block_size=8)
    x, y = splits.train[3]
    assert corpus.decode(x) == text[3:11] and corpus.decode(y) == text[4:12]
    assert len(splits.train) == len(corpus.split()[0]) - 8
    batch = next(iter(hd.DataLoader(splits.train, batch_size=4, shuffle=True)))
    assert batch[0].shape == (4, 8) and batch[0].data.dtype == torch.int64
    with pytest.raises(D.MissingDataError, match="nothing-here.txt"):
        D.char_corpus(tmp_path / "nothing-here.txt")


def test_tiny_shakespeare_missing_and_download(clean_env):
    with pytest.raises(D.MissingDataError) as error:
        D.tiny_shakespeare()
    message = str(error.value)
    assert "tinyshakespeare.txt" in message and "download=True" in message
    assert "raw.githubusercontent.com/karpathy/char-rnn" in message
    assert str(clean_env / "xdg" / "handgrad") in message and "HANDGRAD_DATA is not set" in message

    source = clean_env / "input.txt"
    source.write_text("To be, or not to be\n")
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    text = D.tiny_shakespeare(download=True, url=f"file://{source}", sha256=sha)
    assert text == "To be, or not to be\n"
    assert (clean_env / "xdg" / "handgrad" / "tinyshakespeare.txt").is_file()
    assert D.char_corpus().text == text  # found in the cache afterwards


@pytest.mark.skipif(not (SHARED_DATA / "tinyshakespeare.txt").is_file(),
                    reason=f"no tinyshakespeare.txt in {SHARED_DATA}")
def test_real_tiny_shakespeare_via_env_and_download_check(clean_env, monkeypatch):
    monkeypatch.setenv("HANDGRAD_DATA", str(SHARED_DATA))
    corpus = D.char_corpus()
    assert len(corpus) == 1_115_394 and corpus.vocab_size == 65
    monkeypatch.delenv("HANDGRAD_DATA")
    # The real file through the download path, verified with the published sha256.
    text = D.tiny_shakespeare(clean_env / "root", download=True,
                              url=f"file://{SHARED_DATA / 'tinyshakespeare.txt'}")
    assert text == corpus.text


def test_translation_pairs(clean_env, monkeypatch):
    path = clean_env / "pairs.tsv"
    path.write_text("Go.\tVa !\tCC-BY 2.0 (France) Attribution\n\nHi.\tSalut !\n"
                    "Run!\tCours !\tx\n")
    assert D.translation_pairs(path) == [("Go.", "Va !"), ("Hi.", "Salut !"),
                                         ("Run!", "Cours !")]
    assert D.translation_pairs(path, max_pairs=2) == [("Go.", "Va !"), ("Hi.", "Salut !")]
    path.write_text("Go.\tVa !\nbroken line\n")
    with pytest.raises(D.DataFileError, match="line 2"):
        D.translation_pairs(path)
    with pytest.raises(D.MissingDataError, match="(?s)fra.txt.*manythings.org"):
        D.translation_pairs()
    with pytest.raises(ValueError, match="needs url= and sha256="):
        D.translation_pairs(download=True)
    (clean_env / "data").mkdir()
    (clean_env / "data" / "fra.txt").write_text("Wow!\tÇa alors !\tx\n")
    monkeypatch.setenv("HANDGRAD_DATA", str(clean_env / "data"))
    assert D.translation_pairs() == [("Wow!", "Ça alors !")]


@pytest.mark.skipif(not (SHARED_DATA / "eng-fra-tatoeba-5k.tsv").is_file(),
                    reason=f"no eng-fra-tatoeba-5k.tsv in {SHARED_DATA}")
def test_real_translation_pairs(monkeypatch):
    monkeypatch.setenv("HANDGRAD_DATA", str(SHARED_DATA))
    pairs = D.translation_pairs()
    assert len(pairs) == 5000 and pairs[0][0] == "Go."
    assert all(english and french for english, french in pairs)
