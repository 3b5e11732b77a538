"""max_unpool1d / max_unpool2d and nn.MaxUnpool1d / nn.MaxUnpool2d against torch: the
round trip through max_pool's indices (values and gradients), output_size in its
accepted forms, the modules' repr, and torch's errors (ValueError for output_size,
RuntimeError for indices)."""

import pytest
import torch
import torch.nn.functional as TF

import handgrad as hg
from handgrad import nn
from handgrad.nn import functional as F


def _round_trip(shape, n, pool_options, unpool_options, dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen, dtype=dtype)
    pool = TF.max_pool2d if n == 2 else TF.max_pool1d
    values, indices = pool(x, return_indices=True, **pool_options)
    theirs_in = values.clone().requires_grad_()
    theirs = (TF.max_unpool2d if n == 2 else TF.max_unpool1d)(theirs_in, indices,
                                                               **unpool_options)
    ours_in = hg.Tensor(values.clone(), requires_grad=True)
    ours = (F.max_unpool2d if n == 2 else F.max_unpool1d)(ours_in, hg.Tensor(indices),
                                                           **unpool_options)
    torch.testing.assert_close(ours.data, theirs.detach())
    g = torch.randn(theirs.shape, generator=gen, dtype=dtype)
    theirs.backward(g)
    ours.backward(hg.Tensor(g))
    torch.testing.assert_close(ours_in.grad.data, theirs_in.grad)


@pytest.mark.parametrize("shape, pool, unpool", [
    ((2, 3, 6, 8), {"kernel_size": 2}, {"kernel_size": 2}),
    ((3, 6, 8), {"kernel_size": 2}, {"kernel_size": 2}),
    ((2, 2, 7, 9), {"kernel_size": 3, "stride": 3, "padding": 1},
     {"kernel_size": 3, "stride": 3, "padding": 1, "output_size": (7, 9)}),
    ((1, 2, 5, 5), {"kernel_size": 2}, {"kernel_size": 2, "output_size": (1, 2, 5, 5)}),
])
def test_max_unpool2d_round_trip_matches_torch(shape, pool, unpool):
    _round_trip(shape, 2, pool, unpool)


@pytest.mark.parametrize("shape, pool, unpool", [
    ((2, 3, 8), {"kernel_size": 2}, {"kernel_size": 2}),
    ((3, 9), {"kernel_size": 3}, {"kernel_size": 3, "output_size": [9]}),
    ((2, 1, 11), {"kernel_size": 2, "stride": 2}, {"kernel_size": 2, "output_size": (11,)}),
])
def test_max_unpool1d_round_trip_matches_torch(shape, pool, unpool):
    _round_trip(shape, 1, pool, unpool)


def test_float32_and_strided_input():
    x = torch.randn(2, 3, 8, 6)
    values, indices = TF.max_pool2d(x, 2, return_indices=True)
    strided = values.transpose(2, 3).contiguous().transpose(2, 3)  # same values, strided
    ours = F.max_unpool2d(hg.Tensor(strided), hg.Tensor(indices), 2)
    torch.testing.assert_close(ours.data, TF.max_unpool2d(values, indices, 2))


def test_modules_match_torch_and_print_alike():
    x = torch.randn(2, 3, 6, 6)
    values, indices = TF.max_pool2d(x, 2, return_indices=True)
    ours, theirs = nn.MaxUnpool2d(2), torch.nn.MaxUnpool2d(2)
    assert repr(ours) == repr(theirs)
    torch.testing.assert_close(ours(hg.Tensor(values), hg.Tensor(indices), (7, 7)).data,
                               theirs(values, indices, (7, 7)))
    ours1, theirs1 = nn.MaxUnpool1d(3, stride=2, padding=1), torch.nn.MaxUnpool1d(3, 2, 1)
    assert repr(ours1) == repr(theirs1)
    v1, i1 = TF.max_pool1d(torch.randn(2, 2, 9), 3, 2, 1, return_indices=True)
    torch.testing.assert_close(ours1(hg.Tensor(v1), hg.Tensor(i1)).data, theirs1(v1, i1))


def _pooled():
    values, indices = TF.max_pool2d(torch.randn(1, 2, 4, 4), 2, return_indices=True)
    return hg.Tensor(values), hg.Tensor(indices), values, indices


@pytest.mark.parametrize("output_size, message", [
    ((8, 4), "invalid output_size"),
    ((4, 4, 4), "should be a sequence containing 2 or 4 elements"),
])
def test_output_size_errors_are_value_errors_as_in_torch(output_size, message):
    ours_v, ours_i, values, indices = _pooled()
    with pytest.raises(ValueError):
        TF.max_unpool2d(values, indices, 2, output_size=output_size)
    with pytest.raises(ValueError, match=message):
        F.max_unpool2d(ours_v, ours_i, 2, output_size=output_size)


def test_index_errors_are_runtime_errors_as_in_torch():
    ours_v, ours_i, values, indices = _pooled()
    bad = indices.clone()
    bad[0, 0, 0, 0] = 99
    with pytest.raises(RuntimeError):
        TF.max_unpool2d(values, bad, 2)
    with pytest.raises(RuntimeError, match="invalid max index: 99"):
        F.max_unpool2d(ours_v, hg.Tensor(bad), 2)
    with pytest.raises(RuntimeError, match="should be type int64"):
        F.max_unpool2d(ours_v, hg.Tensor(indices.int()), 2)
    with pytest.raises(RuntimeError, match="shape of indices to be same"):
        F.max_unpool2d(ours_v, hg.Tensor(indices[:, :1]), 2)
    with pytest.raises(RuntimeError, match="Expected 3D or 4D"):
        F.max_unpool2d(hg.Tensor(values[0, 0]), hg.Tensor(indices[0, 0]), 2)
