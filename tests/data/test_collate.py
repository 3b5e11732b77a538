"""default_collate / default_convert against torch's: same structure, dtypes and values."""

from collections import defaultdict, namedtuple

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate as torch_collate
from torch.utils.data import default_convert as torch_convert

from handgrad import data as hd
from handgrad._tensor import Tensor

Point = namedtuple("Point", "x y")

SAMPLES = {
    "torch tensors": [torch.randn(3, 2) for _ in range(4)],
    "int64 tensors": [torch.tensor(i) for i in range(4)],
    "numpy arrays": [np.random.rand(2, 2).astype(np.float32) for _ in range(3)],
    "numpy uint8": [np.arange(4, dtype=np.uint8) for _ in range(3)],
    "numpy scalars": [np.float32(i) for i in range(3)],
    "numpy int scalars": [np.int16(i) for i in range(3)],
    "0-d numpy arrays": [np.array(i * 1.5) for i in range(3)],
    "floats": [0.5, 1.5, 2.5],
    "ints": [1, 2, 3],
    "bools": [True, False, True],
    "ints then floats": [1, 2.5, 3],  # torch.tensor infers float32: nothing truncated
    "bools then ints": [True, 2, False],
    "strings": ["a", "bb", "c"],
    "tuples": [(torch.ones(2) * i, i, "s") for i in range(3)],
    "lists": [[i, float(i)] for i in range(3)],
    "dicts": [{"image": torch.full((2,), i), "label": i, "name": f"n{i}"} for i in range(3)],
    "namedtuples": [Point(torch.ones(1) * i, i) for i in range(3)],
    "nested": [{"pair": (np.ones(2) * i, {"k": [i, i + 1]})} for i in range(3)],
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_default_collate_matches_torch(name, same_batch):
    batch = SAMPLES[name]
    same_batch(hd.default_collate(batch), torch_collate(batch))


def test_default_collate_of_handgrad_tensors(same_batch):
    raw = [torch.randn(2, 3) for _ in range(4)]
    same_batch(hd.default_collate([Tensor(t) for t in raw]), torch_collate(raw))
    pairs = [(Tensor(t), i) for i, t in enumerate(raw)]
    same_batch(hd.default_collate(pairs), torch_collate([(t, i) for i, t in enumerate(raw)]))


def test_namedtuple_type_is_kept():
    out = hd.default_collate(SAMPLES["namedtuples"])
    assert type(out) is Point and out.y.data.tolist() == [0, 1, 2]


def test_mapping_type_is_kept_as_torch_keeps_it():
    samples = [defaultdict(list, a=i) for i in range(3)]
    ours, theirs = hd.default_collate(samples), torch_collate(samples)
    assert type(ours) is type(theirs) is defaultdict and ours.default_factory is list
    assert type(hd.default_convert(samples[0])) is type(torch_convert(samples[0]))


def test_collate_errors_name_the_problem():
    with pytest.raises(RuntimeError, match=r"shapes \[\(2,\), \(3,\)\].*custom collate_fn"):
        hd.default_collate([torch.ones(2), torch.ones(3)])
    with pytest.raises(RuntimeError, match=r"\['image'\]"):
        hd.default_collate([{"image": torch.ones(2)}, {"image": torch.ones(3)}])
    with pytest.raises(RuntimeError, match="should be of equal size"):
        hd.default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="batch must contain"):
        hd.default_collate([object(), object()])
    with pytest.raises(TypeError, match="batch must contain"):
        hd.default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(ValueError, match="empty"):
        hd.default_collate([])


@pytest.mark.parametrize("sample", [
    torch.ones(2), np.ones(3), np.float64(2.0), 3, "s", (np.ones(1), 2), [np.zeros(1)],
    {"a": np.ones(2), "b": "x"}, Point(np.ones(1), 1), range(3), [range(2), np.ones(1)],
])
def test_default_convert_matches_torch(sample, same_batch):
    same_batch(hd.default_convert(sample), torch_convert(sample))
