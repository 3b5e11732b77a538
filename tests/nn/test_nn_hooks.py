"""Module hooks and load_state_dict(assign=True), with torch.nn as the oracle: the same
model is built twice (weights copied), the same hooks are registered on both, and what
the hooks saw, in which order, and what came out (outputs, gradients) must agree."""

from __future__ import annotations

import warnings

import pytest
import torch

import handgrad as hg
from handgrad import nn
from handgrad.autograd import HandgradError

TNN = torch.nn


def _raw(value):
    """A hook argument as a torch tensor (or a tuple of them), to compare frameworks."""
    if isinstance(value, tuple | list):
        return tuple(_raw(v) for v in value)
    if isinstance(value, hg.Tensor):
        return value.data.detach().clone()
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return value


def _assert_same(ours, theirs, what: str) -> None:
    """Two logs of (label, values...) entries agree: labels, None-ness, shapes, values."""
    assert len(ours) == len(theirs), f"{what}: {len(ours)} entries vs torch's {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if isinstance(b, tuple):
            assert isinstance(a, tuple) and len(a) == len(b), f"{what}[{i}]: {a} vs {b}"
            _assert_same(list(a), list(b), f"{what}[{i}]")
        elif isinstance(b, torch.Tensor):
            assert isinstance(a, torch.Tensor), f"{what}[{i}]: {type(a)} vs a Tensor"
            torch.testing.assert_close(a, b, msg=lambda m, i=i: f"{what}[{i}]: {m}")
        else:
            assert a == b, f"{what}[{i}]: {a!r} vs torch's {b!r}"


def _mlp_twins(seed: int = 0):
    """The same 4-8-3 MLP as handgrad and torch.nn Sequentials, float64."""
    torch.manual_seed(seed)
    theirs = TNN.Sequential(TNN.Linear(4, 8), TNN.ReLU(), TNN.Linear(8, 3)).double()
    ours = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _input(shape=(5, 4), requires_grad=True, seed=1):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return hg.Tensor(x.clone(), requires_grad=requires_grad), x.clone().requires_grad_(
        requires_grad)


# ------------------------------------------------------------------ forward hooks
def _register_forward_hooks(model, log):
    """The same set of forward hooks for either framework; returns the handles."""
    def pre_scale(module, args):
        log.append(("pre_scale", _raw(args)))
        return args[0] * 2  # not a tuple: wrapped into one

    def pre_first(module, args):
        log.append(("pre_first", _raw(args)))

    def pre_kwargs(module, args, kwargs):
        log.append(("pre_kwargs", _raw(args), dict(kwargs)))
        return (args[0] + 1,), kwargs

    def after(module, args, output):
        log.append(("after", _raw(args), _raw(output)))
        return output * 3

    def after_kwargs(module, args, kwargs, output):
        log.append(("after_kwargs", _raw(args), dict(kwargs), _raw(output)))

    def after_first(module, args, output):
        log.append(("after_first", _raw(output)))

    return [model.register_forward_pre_hook(pre_scale),
            model.register_forward_pre_hook(pre_first, prepend=True),
            model.register_forward_pre_hook(pre_kwargs, with_kwargs=True),
            model.register_forward_hook(after),
            model.register_forward_hook(after_kwargs, with_kwargs=True),
            model.register_forward_hook(after_first, prepend=True)]


def test_forward_hooks_order_arguments_and_replaced_values_match_torch():
    (ours, theirs), (x, tx) = _mlp_twins(), _input()
    ours_log, theirs_log = [], []
    handles = _register_forward_hooks(ours[2], ours_log)
    _register_forward_hooks(theirs[2], theirs_log)
    out, t_out = ours(x), theirs(tx)
    _assert_same(ours_log, theirs_log, "hook calls")
    assert [entry[0] for entry in ours_log] == [
        "pre_first", "pre_scale", "pre_kwargs", "after_first", "after", "after_kwargs"]
    torch.testing.assert_close(out.data, t_out.detach())
    out.sum().backward()  # the replaced input and output are part of the graph
    t_out.sum().backward()
    torch.testing.assert_close(x.grad.data, tx.grad)
    for handle in handles:
        handle.remove()
    torch.testing.assert_close(ours(x).data, theirs[2].forward(theirs[1](theirs[0](tx))).detach())


def test_a_pre_hook_with_kwargs_must_return_a_pair_and_kwargs_reach_forward():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    module = Scale()
    module.register_forward_pre_hook(lambda m, args, kwargs: (args, {"factor": 5.0}),
                                     with_kwargs=True)
    assert module(hg.ones(2), factor=2.0).tolist() == [5.0, 5.0]
    bad = Scale()
    bad.register_forward_pre_hook(lambda m, args, kwargs: args, with_kwargs=True)
    with pytest.raises(RuntimeError, match=r"must return None or a tuple of \(new_args"):
        bad(hg.ones(2))


def test_removable_handle_removes_once_and_works_as_a_context_manager():
    (ours, _), (x, _) = _mlp_twins(), _input()
    seen = []
    with ours[0].register_forward_hook(lambda m, args, out: seen.append(out.shape)) as handle:
        ours(x)
    ours(x)
    assert seen == [(5, 8)]
    handle.remove()  # a second remove does nothing, as in torch
    pre = ours.register_forward_pre_hook(lambda m, args: seen.append("pre"))
    pre.remove()
    ours(x)
    assert seen == [(5, 8)] and isinstance(pre, nn.RemovableHandle)


def test_a_hook_that_removes_itself_while_running_is_fine():
    (ours, _), (x, _) = _mlp_twins(), _input()
    calls = []

    def once(module, args, output):
        calls.append(1)
        handle.remove()

    handle = ours.register_forward_hook(once)
    ours(x)
    ours(x)
    assert calls == [1]


@pytest.mark.parametrize("framework", ["handgrad", "torch"])
def test_always_call_forward_hooks_run_when_forward_raises(framework):
    module = nn.Linear(4, 3) if framework == "handgrad" else TNN.Linear(4, 3)
    x = hg.ones((2, 5)) if framework == "handgrad" else torch.ones(2, 5)
    calls = []
    module.register_forward_hook(lambda m, args, out: calls.append(("always", out)),
                                 always_call=True)
    module.register_forward_hook(lambda m, args, out: calls.append(("plain", out)))
    with pytest.raises(RuntimeError):  # HandgradError is a RuntimeError too
        module(x)
    assert calls == [("always", None)]


def test_hooks_survive_to_and_stay_out_of_the_state_dict():
    (ours, theirs), (x, _) = _mlp_twins(), _input()
    seen = []
    ours[0].register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    keys = list(ours.state_dict())
    ours.float()
    ours(x.float())
    assert seen == [torch.float32]
    assert list(ours.state_dict()) == keys == list(theirs.state_dict())


def test_a_module_without_hooks_takes_the_plain_path():
    module = nn.Linear(2, 2)
    assert module._hooks is None and nn.Module._hooks is None
    module.register_forward_hook(lambda m, args, out: None).remove()
    assert module._hooks is not None and nn.Linear(2, 2)._hooks is None


# ------------------------------------------------------------------ backward hooks
def _register_backward_hooks(model, log, names):
    """A backward hook and a backward pre-hook logging what they see on each module in
    `names` (name -> module); the hook on "2" doubles its grad_input, the pre-hook on
    "0" halves its grad_output, so the replacements must reach the gradients."""
    for name, module in names(model):
        def hook(module, grad_input, grad_output, name=name):
            log.append((f"backward {name}", _raw(grad_input), _raw(grad_output)))
            if name == "2":
                return tuple(None if g is None else g * 2 for g in grad_input)

        def pre_hook(module, grad_output, name=name):
            log.append((f"pre {name}", _raw(grad_output)))
            if name == "0":
                return (grad_output[0] / 2,)

        module.register_full_backward_hook(hook)
        module.register_full_backward_pre_hook(pre_hook)


def _every_layer(model):
    return [("model", model)] + [(name, layer) for name, layer in model.named_children()]


@pytest.mark.parametrize("names", [lambda m: [("2", m[2])], _every_layer],
                         ids=["one_linear", "every_layer_of_a_sequential"])
def test_full_backward_hooks_see_and_replace_gradients_like_torch(names):
    (ours, theirs), (x, tx) = _mlp_twins(), _input()
    ours_log, theirs_log = [], []
    _register_backward_hooks(ours, ours_log, names)
    _register_backward_hooks(theirs, theirs_log, names)
    upstream = torch.randn(5, 3, generator=torch.Generator().manual_seed(2),
                           dtype=torch.float64)
    out, t_out = ours(x), theirs(tx)
    out.backward(hg.Tensor(upstream))
    t_out.backward(upstream)
    _assert_same(ours_log, theirs_log, "backward hook calls")
    torch.testing.assert_close(x.grad.data, tx.grad)
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(p.grad.data, tp.grad, msg=lambda m, n=name: f"{n}: {m}")


def test_backward_hooks_when_no_input_requires_grad_fire_with_none_like_torch():
    (ours, theirs), (x, tx) = _mlp_twins(), _input(requires_grad=False)
    ours_log, theirs_log = [], []
    _register_backward_hooks(ours, ours_log, lambda m: [("0", m[0])])
    _register_backward_hooks(theirs, theirs_log, lambda m: [("0", m[0])])
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        ours(x).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs(tx).sum().backward()
    _assert_same(ours_log, theirs_log, "backward hook calls")
    assert ours_log[-1][1] == (None,)
    torch.testing.assert_close(ours[0].weight.grad.data, theirs[0].weight.grad)
    bad = nn.Linear(2, 2)
    bad.register_full_backward_hook(lambda m, gi, go: (hg.ones(1, 2),))
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="should always return"):
        bad(hg.ones((1, 2))).sum().backward()


def _two_outputs(framework):
    base = nn.Module if framework == "handgrad" else TNN.Module

    class TwoOutputs(base):
        """Uses only its first input; returns two tensors and a number."""

        def forward(self, a, b, scale=3):
            return a * scale, a + 1, 5

    return TwoOutputs()


def test_backward_hook_entries_for_unused_inputs_outputs_and_non_tensors_match_torch():
    logs = {}
    for framework in ("handgrad", "torch"):
        module, log = _two_outputs(framework), []
        module.register_full_backward_pre_hook(lambda m, go, log=log: log.append(_raw(go)))
        module.register_full_backward_hook(lambda m, gi, go, log=log: log.append(_raw(gi)))
        (a, ta), (b, tb) = _input((3,), seed=3), _input((3,), seed=4)
        a, b = (a, b) if framework == "handgrad" else (ta, tb)
        first, second, number = module(a, b, 4)  # only the first output is used
        first.sum().backward()
        logs[framework] = log
    _assert_same(logs["handgrad"], logs["torch"], "grad_output, grad_input")
    # grad_output: None for the unused output and the number; grad_input: zeros for b
    assert logs["handgrad"][0][1:] == (None, None)
    assert logs["handgrad"][1][1].abs().sum() == 0


def test_a_backward_hook_returning_the_wrong_number_or_shape_is_an_error():
    (x, _) = _input((2, 4))
    too_many = nn.Linear(4, 2).double()
    too_many.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but expected 1"):
        too_many(x).sum().backward()
    wrong_shape = nn.Linear(4, 2).double()
    wrong_shape.register_full_backward_hook(lambda m, gi, go: (hg.ones(3),))
    with pytest.raises(HandgradError, match=r"shape \(3,\).*has shape \(2, 4\)"):
        wrong_shape(x).sum().backward()


def test_backward_hooks_record_nothing_under_no_grad_and_can_be_removed():
    (ours, _), (x, _) = _mlp_twins(), _input()
    calls = []
    handle = ours[0].register_full_backward_hook(lambda m, gi, go: calls.append(1))
    with hg.no_grad():
        out = ours(x)
    assert out._ctx is None and calls == []
    ours(x).sum().backward()
    handle.remove()
    ours(x).sum().backward()
    assert calls == [1]


# ------------------------------------------------------------------ load_state_dict(assign)
def _assign_twins():
    ours, theirs = _mlp_twins()
    ours.append(nn.BatchNorm1d(3))
    theirs.append(TNN.BatchNorm1d(3))
    ours[0].bias.requires_grad_(False)
    theirs[0].bias.requires_grad_(False)
    return ours, theirs


def test_load_state_dict_assign_uses_the_given_tensors_like_torch():
    ours, theirs = _assign_twins()
    torch.manual_seed(5)
    source = {k: torch.randn(v.shape, dtype=torch.float32) if v.is_floating_point()
              else v.clone() for k, v in theirs.state_dict().items()}
    given_parameter = nn.Parameter(torch.randn(8, 4), requires_grad=False)
    ours.load_state_dict({**source, "0.weight": given_parameter}, assign=True)
    theirs.load_state_dict({**source, "0.weight": TNN.Parameter(given_parameter.data.clone(),
                                                                  requires_grad=False)},
                           assign=True)
    assert ours[0].weight is given_parameter and given_parameter.requires_grad  # as torch
    for (key, value), (_, t_value) in zip(ours.state_dict(keep_vars=True).items(),
                                          theirs.state_dict(keep_vars=True).items()):
        assert type(value) is (nn.Parameter if isinstance(t_value, TNN.Parameter)
                               else hg.Tensor), key
        assert value.dtype == t_value.dtype, key  # float32 now, as the state_dict
        assert value.requires_grad == t_value.requires_grad, key
        torch.testing.assert_close(value.data, t_value.detach(), msg=lambda m, k=key: f"{k}: {m}")
        if key != "0.weight":  # no copy: the module holds the given storage
            assert value.data.data_ptr() == source[key].data_ptr(), key


def test_load_state_dict_assign_still_checks_keys_and_shapes():
    ours, _ = _assign_twins()
    state = {k: v.data.clone() for k, v in ours.state_dict().items()}
    state["2.weight"] = torch.zeros(3, 7)
    with pytest.raises(RuntimeError, match=r"size mismatch for 2.weight"):
        ours.load_state_dict(state, assign=True)
    del state["2.weight"]
    result = ours.load_state_dict(state, strict=False, assign=True)
    assert result.missing_keys == ["2.weight"] and ours[2].weight.shape == (3, 8)
