"""The breadth layers of issue 12 against torch.nn: ParameterList and ParameterDict
(names, state_dict keys, conversion of tensors, repr, the list and dict methods),
Bilinear (values, gradients, init, errors), PixelShuffle / PixelUnshuffle, EmbeddingBag
(every mode, offsets, per_sample_weights, padding_idx, max_norm) and AlphaDropout /
FeatureAlphaDropout (the formula for a given mask, statistics, edge probabilities)."""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch

import handgrad as hg
from handgrad import nn
from handgrad.nn import functional as F
from tests.torch_compare import assert_close, compare_modules, same_as_torch


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64)


# ------------------------------------------------------------------ ParameterList
class _Holder:
    """The same little model built from handgrad's and from torch's nn."""

    @staticmethod
    def build(lib, tensor):
        class Model(lib.Module):
            def __init__(self):
                super().__init__()
                self.scales = lib.ParameterList([tensor(2, 3), tensor(4)])
                self.named = lib.ParameterDict({"b": tensor(3), "a": tensor(1, 2)})
                self.linear = lib.Linear(2, 2)

        return Model()


def _torch_tensor(*shape):
    return torch.zeros(*shape)


def _hg_tensor(*shape):
    return hg.zeros(*shape)


def test_parameter_containers_have_torchs_names_and_state_dict_keys():
    ours, theirs = _Holder.build(nn, _hg_tensor), _Holder.build(torch.nn, _torch_tensor)
    names = [name for name, _ in ours.named_parameters()]
    assert names == [name for name, _ in theirs.named_parameters()]
    assert names[:4] == ["scales.0", "scales.1", "named.a", "named.b"]  # a plain dict: sorted
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert isinstance(p, nn.Parameter) and p.shape == q.shape
    ours.load_state_dict(theirs.state_dict())  # weights move both ways
    theirs.load_state_dict({k: v.data for k, v in ours.state_dict().items()})
    assert repr(ours) == repr(theirs)


def test_parameter_list_methods_match_torch():
    values = [_randn(2), _randn(3, 1, seed=1)]
    ours = nn.ParameterList([hg.tensor(values[0]), values[1]])  # handgrad or torch tensors
    theirs = torch.nn.ParameterList([v.clone() for v in values])
    for pl in (ours, theirs):
        pl.append(torch.ones(4))
        pl.extend([torch.zeros(1, 2)])
        pl += [torch.full((2, 2), 3.0)]
        pl[1] = torch.ones(5)
        pl.append("not a tensor")  # held as is, as in torch
    assert len(ours) == len(theirs) == 6
    assert all(isinstance(p, nn.Parameter) for p in list(ours)[:5])
    assert ours[-1] == "not a tensor"
    assert [tuple(p.shape) for p in ours[:5]] == [tuple(p.shape) for p in theirs[:5]]
    assert isinstance(ours[1:3], nn.ParameterList) and len(ours[::2]) == 3
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    assert repr(nn.ParameterList()) == repr(torch.nn.ParameterList())
    shared = nn.Parameter(hg.ones(2))
    assert nn.ParameterList([shared])[0] is shared  # a Parameter is kept, not copied
    plain = hg.ones(3)
    converted = nn.ParameterList([plain])[0]
    assert isinstance(converted, nn.Parameter) and converted.requires_grad
    assert converted.data.data_ptr() == plain.data.data_ptr()  # shares storage, as torch


def test_parameter_list_errors_are_torchs():
    ours, theirs = nn.ParameterList([hg.ones(2)]), torch.nn.ParameterList([torch.ones(2)])
    for pl in (ours, theirs):
        with pytest.raises(IndexError, match="index 1 is out of range"):
            pl[1]
        with pytest.raises(IndexError, match="index -2 is out of range"):
            pl[-2] = torch.ones(1)
        with pytest.raises(TypeError, match="should be called with an iterable"):
            pl.extend(torch.ones(3))
        with pytest.raises(RuntimeError, match="ParameterList should not be called"):
            pl(torch.ones(2))


def test_parameter_list_gradients_reach_its_parameters():
    pl = nn.ParameterList([hg.tensor([1.0, 2.0]), hg.tensor([3.0, 4.0])])
    (pl[0] * pl[1]).sum().backward()
    assert torch.equal(pl[0].grad.data, torch.tensor([3.0, 4.0]))
    assert torch.equal(pl[1].grad.data, torch.tensor([1.0, 2.0]))


# ------------------------------------------------------------------ ParameterDict
def test_parameter_dict_methods_match_torch():
    pairs = [("w", _randn(2)), ("v", _randn(3, seed=1))]
    ours = nn.ParameterDict(pairs)  # pairs keep their order
    theirs = torch.nn.ParameterDict([(k, v.clone()) for k, v in pairs])
    for pd in (ours, theirs):
        assert list(pd.keys()) == ["w", "v"]
        pd["u"] = torch.ones(4)
        pd.update(OrderedDict([("z", torch.zeros(1)), ("y", torch.zeros(2))]))
        pd.update({"q": torch.ones(1), "p": torch.ones(2)})  # sorted, as torch
        assert pd.setdefault("u") is pd["u"]
        pd.setdefault("s", torch.ones(3))
        pd.pop("v")
        assert pd.popitem()[0] == "s"
        assert pd.get("missing", 7) == 7 and "w" in pd and "v" not in pd
        del pd["z"]
    assert list(ours) == list(theirs) == ["w", "u", "y", "p", "q"]
    assert list(reversed(ours)) == list(reversed(theirs))
    assert all(isinstance(p, nn.Parameter) for p in ours.values())
    assert [tuple(p.shape) for _, p in ours.items()] == \
        [tuple(p.shape) for _, p in theirs.items()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    copy = ours.copy()
    assert list(copy) == list(ours) and copy["w"] is ours["w"]
    merged = ours | nn.ParameterDict({"extra": hg.ones(1)})
    assert list(merged) == [*ours, "extra"] and "extra" not in ours
    ours |= nn.ParameterDict({"extra": hg.ones(1)})
    assert "extra" in ours
    assert list(ours.fromkeys(["k1", "k2"], hg.ones(2))) == ["k1", "k2"]
    ours.clear()
    theirs.clear()
    assert len(ours) == 0 and list(ours.parameters()) == []
    assert repr(ours) == repr(theirs)


def test_parameter_dict_errors_are_torchs():
    ours, theirs = nn.ParameterDict(), torch.nn.ParameterDict()
    for pd in (ours, theirs):
        with pytest.raises(TypeError, match="not a string"):
            pd[1] = torch.ones(1)
        with pytest.raises(TypeError, match="should be called with an iterable"):
            pd.update(3)
        with pytest.raises(ValueError, match="element #0 has length 3; 2 is required"):
            pd.update([("a", torch.ones(1), 3)])
        with pytest.raises(KeyError):
            pd["a.b"] = torch.ones(1)  # a dotted name would break state_dict keys
        with pytest.raises(AttributeError, match="no attribute 'absent'"):
            pd.pop("absent")  # torch's exception type for a missing key


# ------------------------------------------------------------------ Bilinear
@pytest.mark.parametrize("shapes", [((6, 3), (6, 5)), ((2, 4, 3), (2, 4, 5)), ((3,), (5,)),
                                    ((0, 3), (0, 5))], ids=["2d", "3d", "1d", "empty"])
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_matches_torch(dtype, shapes, bias):
    ours, theirs = nn.Bilinear(3, 5, 4, bias=bias), torch.nn.Bilinear(3, 5, 4, bias=bias)
    assert repr(ours) == repr(theirs)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, p.shape) for n, p in theirs.named_parameters()]
    compare_modules(ours, theirs, _randn(*shapes[0]), _randn(*shapes[1], seed=1),
                    dtype=dtype)


def test_bilinear_functional_non_contiguous_inputs():
    def bilinear(functional):  # the transposes inside make the inputs strided views
        return lambda x1, x2, w, b: functional.bilinear(x1.t(), x2.t(), w.transpose(1, 2), b)

    same_as_torch(bilinear(F), *(t.numpy() for t in (_randn(3, 6), _randn(5, 6, seed=1),
                                                     _randn(4, 5, 3, seed=2), _randn(4))),
                  ref=bilinear(torch.nn.functional))


def test_bilinear_init_is_torchs_uniform():
    layer = nn.Bilinear(16, 20, 30)
    bound = 1 / math.sqrt(16)
    for p in (layer.weight, layer.bias):
        assert p.data.abs().max().item() <= bound
    w = layer.weight.data
    assert abs(w.mean().item()) < 0.05 * bound
    assert abs(w.var().item() / (bound ** 2 / 3) - 1) < 0.05  # U(-b, b) has var b^2 / 3
    assert layer.bias.data.abs().max().item() > 0.5 * bound


@pytest.mark.parametrize("shape1, shape2, match", [
    ((2, 4), (2, 5), "input1 size does not match weight size: got 4 but expected 3"),
    ((2, 3), (2, 6), "input2 size does not match weight size: got 6 but expected 5"),
    ((2, 3), (3, 5), "batch dimensions do not match at dim 0: got 2 and 3"),
    ((2, 3), (5,), "input dimensions do not match: got 2 and 1"),
])
def test_bilinear_errors_name_the_sizes(shape1, shape2, match):
    layer, reference = nn.Bilinear(3, 5, 4), torch.nn.Bilinear(3, 5, 4)
    with pytest.raises(RuntimeError, match=match):
        reference(torch.randn(shape1), torch.randn(shape2))
    with pytest.raises(RuntimeError, match=match):
        layer(hg.randn(*shape1), hg.randn(*shape2))
    with pytest.raises(RuntimeError, match="bias size does not match weight size"):
        F.bilinear(hg.randn(2, 3), hg.randn(2, 5), layer.weight, hg.randn(3))


# ------------------------------------------------------------------ PixelShuffle
@pytest.mark.parametrize("shape, factor", [((2, 8, 3, 4), 2), ((9, 2, 3), 3),
                                           ((2, 3, 4, 2, 1), 2), ((1, 1, 1, 1), 1)])
def test_pixel_shuffle_and_unshuffle_match_torch(dtype, shape, factor):
    shuffle, reference = nn.PixelShuffle(factor), torch.nn.PixelShuffle(factor)
    assert repr(shuffle) == repr(reference)
    compare_modules(shuffle, reference, _randn(*shape), dtype=dtype)
    shuffled = tuple(reference(torch.zeros(shape)).shape)
    unshuffle, reference = nn.PixelUnshuffle(factor), torch.nn.PixelUnshuffle(factor)
    assert repr(unshuffle) == repr(reference)
    compare_modules(unshuffle, reference, _randn(*shuffled), dtype=dtype)
    x = hg.tensor(_randn(*shape))
    assert torch.equal(F.pixel_unshuffle(F.pixel_shuffle(x, factor), factor).data, x.data)


def test_pixel_shuffle_non_contiguous_input():
    for call, permute, shape in (("pixel_shuffle", (0, 3, 1, 2), (2, 3, 4, 8)),
                                 ("pixel_unshuffle", (0, 3, 2, 1), (2, 6, 4, 3))):
        def fn(functional, call=call, permute=permute):
            return lambda x: getattr(functional, call)(x.permute(*permute), 2)

        same_as_torch(fn(F), _randn(*shape).numpy(), ref=fn(torch.nn.functional))


@pytest.mark.parametrize("call, shape, factor, error, match", [
    ("pixel_shuffle", (1, 5, 2, 2), 2, RuntimeError, "input.size\\(-3\\)=5 is not divisible by 4"),
    ("pixel_shuffle", (4, 2), 2, RuntimeError, "at least 3 dimensions"),
    ("pixel_shuffle", (1, 4, 2, 2), 0, RuntimeError, "positive upscale_factor, but got 0"),
    ("pixel_shuffle", (1, 4, 2, 2), 2.0, TypeError, "must be int, not float"),
    ("pixel_unshuffle", (1, 5, 3, 2), 2, RuntimeError, "height to be divisible"),
    ("pixel_unshuffle", (1, 5, 2, 3), 2, RuntimeError, "width to be divisible"),
    ("pixel_unshuffle", (1, 4, 2, 2), -1, RuntimeError, "positive downscale_factor"),
])
def test_pixel_shuffle_errors_are_torchs(call, shape, factor, error, match):
    with pytest.raises(error, match=match):
        getattr(torch.nn.functional, call)(torch.randn(shape), factor)
    with pytest.raises(error, match=match):
        getattr(F, call)(hg.randn(*shape), factor)


# ------------------------------------------------------------------ EmbeddingBag
INDICES_1D = torch.tensor([1, 2, 4, 5, 4, 3, 2, 0, 1, 1])
BAG_CASES = [  # (input, offsets, options)
    (torch.tensor([[0, 2, 5, 2], [1, 2, 3, 5], [4, 4, 4, 4]]), None, {}),
    (INDICES_1D, torch.tensor([0, 3, 3, 7]), {}),  # an empty bag gives zeros
    (INDICES_1D, torch.tensor([0, 3, 3, 7, 10]), {"include_last_offset": True}),
    (INDICES_1D, torch.tensor([0, 4]), {"padding_idx": 2}),
    (INDICES_1D, torch.tensor([0, 2, 6]), {"padding_idx": -1}),
    (INDICES_1D.int(), torch.tensor([0, 5], dtype=torch.int32), {}),
    (torch.tensor([[2, 2, 1], [2, 2, 2]]), None, {"padding_idx": 2}),  # a bag of padding only
]


def _compare_bags(dtype, input, offsets, options, weights=False, steps=1):
    ours = nn.EmbeddingBag(6, 3, **options)
    theirs = torch.nn.EmbeddingBag(6, 3, **options).to(dtype)
    ours.to(dtype)
    assert repr(ours) == repr(theirs)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, p.shape) for n, p in theirs.named_parameters()]
    theirs.load_state_dict({k: v.data.clone() for k, v in ours.state_dict().items()})
    gen = torch.Generator().manual_seed(0)
    for step in range(steps):
        psw_t = psw = None
        if weights:
            psw_t = torch.rand(input.shape, generator=gen, dtype=dtype).requires_grad_()
            psw = hg.tensor(psw_t.detach().clone(), requires_grad=True)
        ours.zero_grad()
        theirs.zero_grad()
        out = ours(hg.tensor(input), None if offsets is None else hg.tensor(offsets), psw)
        expected = theirs(input, offsets, psw_t)
        assert_close(out, expected, dtype, f"step {step} output")
        upstream = torch.randn(expected.shape, generator=gen, dtype=dtype)
        out.backward(upstream)
        expected.backward(upstream)
        assert_close(ours.weight.grad, theirs.weight.grad, dtype, f"step {step} weight grad")
        assert_close(ours.weight, theirs.weight, dtype, f"step {step} weight")  # max_norm
        if weights:
            assert_close(psw.grad, psw_t.grad, dtype, f"step {step} per_sample_weights grad")


@pytest.mark.parametrize("case", range(len(BAG_CASES)))
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_matches_torch(dtype, mode, case):
    input, offsets, options = BAG_CASES[case]
    _compare_bags(dtype, input, offsets, {"mode": mode, **options})


@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_embedding_bag_per_sample_weights_match_torch(dtype, case):
    input, offsets, options = BAG_CASES[case]
    _compare_bags(dtype, input, offsets, {"mode": "sum", **options}, weights=True)


@pytest.mark.parametrize("options", [{"max_norm": 1.0}, {"max_norm": 0.5, "norm_type": 1.0}])
@pytest.mark.parametrize("mode", ["sum", "max"])
def test_embedding_bag_max_norm_renormalises_like_torch(dtype, mode, options):
    input, offsets, _ = BAG_CASES[1]
    _compare_bags(dtype, input, offsets, {"mode": mode, **options}, steps=2)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_scale_grad_by_freq_is_embeddings(mode):
    # torch documents the rule (each row's gradient divided by its count in the input)
    # and F.embedding follows it; torch's CPU embedding_bag kernel divides some rows by
    # another row's count, so the reference here is F.embedding reduced per bag.
    offsets = [0, 4, 4, 10]
    weight = _randn(6, 3)

    def reference(w):
        rows = torch.nn.functional.embedding(INDICES_1D, w, scale_grad_by_freq=True)
        bags = [rows[a:b] for a, b in zip(offsets, offsets[1:] + [10])]
        reduce = torch.sum if mode == "sum" else torch.mean
        return torch.stack([reduce(bag, 0) if len(bag) else w.new_zeros(3) for bag in bags])

    same_as_torch(lambda w: F.embedding_bag(hg.tensor(INDICES_1D), w, hg.tensor(offsets),
                                            scale_grad_by_freq=True, mode=mode),
                  weight.numpy(), ref=reference)


def test_embedding_bag_max_sends_each_gradient_to_one_winner():
    weight = hg.tensor([[1.0, 5.0], [3.0, 2.0], [3.0, 0.0]], requires_grad=True)
    out = F.embedding_bag(hg.tensor([[1, 1, 0], [2, 1, 2]]), weight, mode="max")
    assert torch.equal(out.data, torch.tensor([[3.0, 5.0], [3.0, 2.0]]))
    out.backward(hg.tensor([[1.0, 10.0], [100.0, 1000.0]]))
    # bag 0: row 1 twice (one winner in column 0), row 0 in column 1; bag 1: the tie in
    # column 0 between rows 2 and 1 goes to the first entry (row 2), column 1 to row 1
    assert torch.equal(weight.grad.data, torch.tensor([[0.0, 10.0], [1.0, 1000.0],
                                                       [100.0, 0.0]]))
    reference = weight.data.clone().requires_grad_()  # torch picks the same winners
    torch.nn.functional.embedding_bag(torch.tensor([[1, 1, 0], [2, 1, 2]]), reference,
                                      mode="max").backward(torch.tensor([[1.0, 10.0],
                                                                         [100.0, 1000.0]]))
    assert torch.equal(weight.grad.data, reference.grad)


def test_embedding_bag_from_pretrained_and_init():
    table = hg.randn(4, 2)
    bag = nn.EmbeddingBag.from_pretrained(table, mode="sum")
    assert not bag.weight.requires_grad and repr(bag) == "EmbeddingBag(4, 2, mode='sum')"
    assert torch.allclose(bag(hg.tensor([[0, 3]])).data, table.data[[0, 3]].sum(0))
    assert nn.EmbeddingBag.from_pretrained(table, freeze=False).weight.requires_grad
    padded = nn.EmbeddingBag(1000, 8, padding_idx=3)
    assert torch.equal(padded.weight.data[3], torch.zeros(8))
    w = torch.cat([padded.weight.data[:3], padded.weight.data[4:]])
    assert abs(w.mean().item()) < 0.05 and abs(w.std().item() - 1) < 0.05  # N(0, 1)


@pytest.mark.parametrize("call, error, match", [
    (lambda f, w, t: f(t([[0, 1]]), w, t([0])), ValueError, "offsets has to be None"),
    (lambda f, w, t: f(t([0, 1]), w), ValueError, "offsets has to be a 1D Tensor but got None"),
    (lambda f, w, t: f(t([0, 1]), w, t([[0]])), ValueError, "offsets has to be a 1D Tensor"),
    (lambda f, w, t: f(t([[[0]]]), w), ValueError, "input has to be 1D or 2D"),
    (lambda f, w, t: f(t([0, 1]), w, t([0]), mode="min"), ValueError, "mode has to be one of"),
    (lambda f, w, t: f(t([0, 1]), w, t([0]), mode="max", scale_grad_by_freq=True),
     ValueError, "max mode does not support scaling"),
    (lambda f, w, t: f(t([0, 1]), w, t([0]), mode="mean", per_sample_weights=t([1.0, 2.0])),
     NotImplementedError, "only supported for mode='sum'"),
    (lambda f, w, t: f(t([0, 1]), w, t([0]), mode="sum", per_sample_weights=t([1.0])),
     ValueError, "must have the same shape as the input"),
    (lambda f, w, t: f(t([0, 1]), w, t([1])), RuntimeError, "offsets\\[0\\] has to be 0"),
    (lambda f, w, t: f(t([0, 1]), w, t([0, 3])), RuntimeError, "can not be greater than"),
    (lambda f, w, t: f(t([0, 9]), w, t([0])), RuntimeError, "takes value 9 which is not in"),
])
def test_embedding_bag_errors_are_torchs(call, error, match):
    with pytest.raises(error, match=match):
        call(torch.nn.functional.embedding_bag, torch.randn(6, 3), torch.tensor)
    with pytest.raises(error, match=match):
        call(F.embedding_bag, hg.randn(6, 3), hg.tensor)
    with pytest.raises(AssertionError, match="padding_idx must be within num_embeddings"):
        nn.EmbeddingBag(6, 3, padding_idx=6)
    with pytest.raises(RuntimeError, match="non-decreasing"):  # torch's message is obscure
        F.embedding_bag(hg.tensor(INDICES_1D), hg.randn(6, 3), hg.tensor([0, 4, 2]))


# ------------------------------------------------------------------ alpha dropout
SELU_SATURATION = 1.7580993408473766  # SELU's lambda * alpha


@pytest.mark.parametrize("name, shape", [("AlphaDropout", (50, 40)),
                                         ("FeatureAlphaDropout", (6, 5, 4)),
                                         ("FeatureAlphaDropout", (6, 5))])
def test_alpha_dropout_matches_torch_bit_for_bit_on_cpu_with_the_same_seed(dtype, name,
                                                                           shape):
    ours, theirs = getattr(nn, name)(0.3), getattr(torch.nn, name)(0.3)
    assert repr(ours) == repr(theirs)
    x = _randn(*shape).to(dtype)
    hg.manual_seed(7)
    xh = hg.tensor(x, requires_grad=True)
    out = ours(xh)
    torch.manual_seed(7)
    xt = x.clone().requires_grad_()
    expected = theirs(xt)
    assert torch.equal(out.data, expected)
    g = _randn(*shape, seed=1).to(dtype)
    out.backward(g)
    expected.backward(g)
    assert torch.equal(xh.grad.data, xt.grad)


@pytest.mark.parametrize("feature", [False, True])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_alpha_dropout_is_its_formula_for_the_mask_drawn(feature, p):
    x = _randn(8, 6, 5)
    call = F.feature_alpha_dropout if feature else F.alpha_dropout
    xh = hg.tensor(x, requires_grad=True)
    out = call(xh, p, True, generator=torch.Generator().manual_seed(5))
    shape = (8, 6, 1) if feature else x.shape  # the same draw from the same generator
    mask = torch.empty(shape, dtype=x.dtype).bernoulli_(
        1 - p, generator=torch.Generator().manual_seed(5))
    a = 1 / math.sqrt((SELU_SATURATION ** 2 * p + 1) * (1 - p))
    b = (mask - 1) * SELU_SATURATION * a + SELU_SATURATION * a * p
    torch.testing.assert_close(out.data, x * mask * a + b)
    g = _randn(8, 6, 5, seed=1)
    out.backward(g)
    torch.testing.assert_close(xh.grad.data, g * mask * a)


@pytest.mark.parametrize("feature", [False, True])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_alpha_dropout_keeps_a_selu_networks_mean_and_variance(feature, p):
    x = hg.tensor(torch.randn(400, 250, 2, generator=torch.Generator().manual_seed(0)))
    layer = (nn.FeatureAlphaDropout if feature else nn.AlphaDropout)(
        p, generator=torch.Generator().manual_seed(1))
    out = layer(x).data
    assert abs(out.mean().item()) < 0.02 and abs(out.var().item() - 1) < 0.02
    dropped = torch.isclose(out, torch.tensor(-SELU_SATURATION / math.sqrt(
        (SELU_SATURATION ** 2 * p + 1) * (1 - p)) * (1 - p)))
    assert abs(dropped.double().mean().item() - p) < 0.02


def test_alpha_dropout_eval_edge_probabilities_and_errors():
    x = hg.randn(4, 5, requires_grad=True)
    for layer in (nn.AlphaDropout(0.5), nn.FeatureAlphaDropout(0.5)):
        assert layer.eval()(x) is x
    assert nn.AlphaDropout(0.0)(x) is x
    assert F.alpha_dropout(x, 0.5) is x  # torch's functional default is training=False
    assert F.feature_alpha_dropout(x, 0.5) is x
    for call in (F.alpha_dropout, F.feature_alpha_dropout):
        zeros = call(x, 1.0, True)
        assert torch.equal(zeros.data, torch.zeros(4, 5))
        zeros.sum().backward()
        assert torch.equal(x.grad.data, torch.zeros(4, 5))
        x.grad = None
        with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
            call(x, 1.5, True)
    for name in ("AlphaDropout", "FeatureAlphaDropout"):
        for lib in (nn, torch.nn):
            with pytest.raises(ValueError, match="between 0 and 1, but got -0.1"):
                getattr(lib, name)(-0.1)
    with pytest.raises(RuntimeError, match="Feature dropout requires at least 2 dimensions"):
        torch.nn.functional.feature_alpha_dropout(torch.randn(3), 0.5, True)
    with pytest.raises(RuntimeError, match="Feature dropout requires at least 2 dimensions"):
        F.feature_alpha_dropout(hg.randn(3), 0.5, True)
