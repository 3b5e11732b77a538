"""Collate: turn a list of samples into one batch.

``default_collate`` follows PyTorch's rules, and returns handgrad Tensors at the leaves:

=========================  ==================================================
each sample is             the batch is
=========================  ==================================================
Tensor / torch tensor      a Tensor of shape ``(B, *sample_shape)`` (stacked)
numpy array                the same, from the array (string/object arrays fail)
numpy scalar               a Tensor of shape ``(B,)`` with the numpy dtype
float                      a Tensor of shape ``(B,)``, float64
int / bool                 ``torch.tensor(batch)``: int64, bool, or float32 for a mix
str / bytes                the samples, unchanged (a list)
dict (Mapping)             the same mapping type: each key collated over the batch
namedtuple                 the same namedtuple type, each field collated
tuple                      a list: each position collated over the batch
list (Sequence)            the same sequence type where it can be rebuilt, else a list
=========================  ==================================================

The raw torch tensors are stacked with ``torch.stack`` and wrapped once. Samples of
different shapes are an error that names the shapes (pad them in your own collate_fn).
``default_convert`` is what the DataLoader applies when automatic batching is off
(``batch_size=None``): it converts arrays and tensors to Tensors and leaves the rest.
"""

from __future__ import annotations

import collections.abc
import copy

import numpy as np
import torch

from handgrad.data._tensors import is_handgrad_tensor, wrap

_BAD_NUMPY_KINDS = "SaUO"  # bytes, str, unicode, object: no tensor for those
_TYPES_HELP = ("default_collate: batch must contain Tensors, torch tensors, numpy arrays, "
               "numbers, dicts or lists; found {}")


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _same_mapping(elem, values: dict):
    """``values`` in a mapping of ``elem``'s type, as torch does (a copy updated for a
    mutable mapping, so a defaultdict keeps its default_factory); a dict if that fails."""
    try:
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(values)
            return clone
        return type(elem)(values)
    except TypeError:
        return values


def _same_sequence(elem, values: list):
    """``values`` in a sequence of ``elem``'s type, as torch does; a list if that fails."""
    try:
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, value in enumerate(values):
                clone[i] = value
            return clone
        return type(elem)(values)
    except TypeError:
        return values


def _stack(raws: list[torch.Tensor], where: str):
    try:
        return wrap(torch.stack(raws, 0))
    except RuntimeError as error:
        shapes = sorted({tuple(t.shape) for t in raws})
        dtypes = sorted({str(t.dtype) for t in raws})
        raise RuntimeError(
            f"default_collate: cannot stack the samples{where}: shapes {shapes}, dtypes "
            f"{dtypes}. Samples of different shapes need a custom collate_fn (e.g. one "
            f"that pads them). ({error})") from error


def _collate(batch: list, where: str):
    elem = batch[0]
    if isinstance(elem, torch.Tensor):
        return _stack(list(batch), where)
    if is_handgrad_tensor(elem):
        return _stack([x.data for x in batch], where)
    if isinstance(elem, np.ndarray | np.generic) and not isinstance(elem, np.str_ | np.bytes_):
        if elem.dtype.kind in _BAD_NUMPY_KINDS:
            raise TypeError(_TYPES_HELP.format(f"numpy array of dtype {elem.dtype}"))
        if isinstance(elem, np.generic) or elem.shape == ():
            return wrap(torch.as_tensor(np.asarray(batch)))
        return _stack([torch.as_tensor(x) for x in batch], where)
    if isinstance(elem, int):  # bools too; as torch, the dtype is inferred from every
        return wrap(torch.tensor(batch))  # sample, so [1, 2.5] is float32, not truncated
    if isinstance(elem, float):
        return wrap(torch.tensor(batch, dtype=torch.float64))
    if isinstance(elem, str | bytes):
        return batch  # as torch: the list (or, inside a tuple sample, the tuple) as is
    if isinstance(elem, collections.abc.Mapping):
        return _same_mapping(elem, {key: _collate([d[key] for d in batch], f"{where}[{key!r}]")
                                    for key in elem})
    if _is_namedtuple(elem):
        return type(elem)(*(_collate(field, f"{where}.{name}")
                            for name, field in zip(elem._fields, zip(*batch))))
    if isinstance(elem, collections.abc.Sequence):
        sizes = {len(x) for x in batch}
        if len(sizes) != 1:
            raise RuntimeError(f"default_collate: each element in list of batch should be of "
                               f"equal size, got lengths {sorted(sizes)}{where}")
        collated = [_collate(column, f"{where}[{i}]") for i, column in enumerate(zip(*batch))]
        return collated if isinstance(elem, tuple) else _same_sequence(elem, collated)
    raise TypeError(_TYPES_HELP.format(type(elem)))


def default_collate(batch: list):
    """Collate a list of samples into a batch (rules in the module docstring)."""
    if len(batch) == 0:
        raise ValueError("default_collate: the batch is empty (no samples to collate)")
    return _collate(batch, "")


def default_convert(data):
    """Convert one sample without batching: arrays and torch tensors become Tensors,
    containers are converted element by element, everything else is left as is."""
    if isinstance(data, torch.Tensor):
        return wrap(data)
    if is_handgrad_tensor(data):
        return data
    if isinstance(data, np.ndarray) and data.dtype.kind not in _BAD_NUMPY_KINDS:
        return wrap(torch.as_tensor(data))
    if isinstance(data, np.generic) and data.dtype.kind not in _BAD_NUMPY_KINDS:
        return wrap(torch.as_tensor(data))
    if isinstance(data, str | bytes):
        return data
    if isinstance(data, collections.abc.Mapping):
        return _same_mapping(data, {key: default_convert(value) for key, value in data.items()})
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence):
        return _same_sequence(data, [default_convert(d) for d in data])
    return data
