"""Factories, as torch's: `tensor`, `as_tensor`, `from_numpy`, `zeros`, `ones`, `full`,
`empty`, `arange`, `linspace`, `eye`, the random ones (`rand`, `randn`, `randint`,
`randperm`, `normal`), the `*_like` family, and `manual_seed`. Each makes a leaf Tensor
(one that requires grad when asked, floating-point only, as in torch), except `normal`
with a tensor mean or std, which is an op (handgrad/ops/fill.py: its gradient is zero, as
torch's).

What this module leaves out: the Tensor class (_tensor.py), functions of tensors
(_functions.py).
"""

from __future__ import annotations

import torch

from handgrad._tensor import Tensor, _raw, _shape_args
from handgrad.ops.fill import Normal

__all__ = [
    "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty",
    "arange", "linspace", "eye", "rand", "randn", "randint", "randperm", "normal",
    "zeros_like",
    "ones_like", "full_like", "empty_like", "rand_like", "randn_like", "randint_like",
    "manual_seed",
]


def _unwrap_nested(data):
    """Nested lists/tuples with handgrad Tensors in them, as torch tensors (torch.tensor
    reads `[hg.tensor(1.), hg.tensor(2.)]` as it reads a list of torch tensors)."""
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, list | tuple):
        return type(data)(_unwrap_nested(d) for d in data)
    return data


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new leaf tensor holding a copy of `data` (nested lists, numbers, numpy, tensors)."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, torch.Tensor):
        raw = data.detach().clone().to(dtype=dtype, device=device)
    else:
        raw = torch.tensor(_unwrap_nested(data), dtype=dtype, device=device)
    return Tensor(raw, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Wrap `data` without copying when possible."""
    return Tensor(torch.as_tensor(_raw(data), dtype=dtype, device=device))


def from_numpy(array) -> Tensor:
    return Tensor(torch.from_numpy(array))


def _factory(torch_fn):
    def make(*shape, size=None, dtype=None, device=None, requires_grad=False,
             generator=None):
        kwargs = {"dtype": dtype, "device": device}
        if generator is not None:
            kwargs["generator"] = generator
        if size is not None:  # torch.zeros(size=(2, 3))
            if shape:
                raise TypeError(f"{torch_fn.__name__}: give the shape either as positional "
                                f"arguments or as size=, not both")
            shape = (size,)
        return Tensor(torch_fn(_shape_args(shape), **kwargs), requires_grad=requires_grad)

    make.__name__ = torch_fn.__name__
    make.__doc__ = f"Like torch.{torch_fn.__name__}: a new leaf tensor of the given shape."
    return make


zeros = _factory(torch.zeros)
ones = _factory(torch.ones)
empty = _factory(torch.empty)
rand = _factory(torch.rand)
randn = _factory(torch.randn)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return Tensor(torch.full(tuple(size), _raw(fill_value), dtype=dtype, device=device),
                  requires_grad=requires_grad)


def arange(start=0, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """arange(end), arange(start, end, step) or arange(end=n), as torch (the dtype is
    int64 when every argument is an integer, else the default float dtype)."""
    start, end, step = _raw(start), _raw(end), _raw(step)
    data = (torch.arange(start, dtype=dtype, device=device) if end is None
            else torch.arange(start, end, step, dtype=dtype, device=device))
    return Tensor(data, requires_grad=requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    return Tensor(torch.linspace(_raw(start), _raw(end), steps, dtype=dtype, device=device),
                  requires_grad=requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    data = torch.eye(n, n if m is None else m, dtype=dtype, device=device)
    return Tensor(data, requires_grad=requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """randint(high, size), randint(low, high, size) or randint(high=, size=), as torch:
    integers drawn uniformly from [low, high), int64 unless `dtype` says otherwise."""
    if size is None:  # randint(high, size): the second positional argument is the size
        if high is None or isinstance(high, int):
            raise TypeError("randint: missing the size, e.g. randint(10, (3,)) or "
                            "randint(0, 10, size=(3,))")
        low, high, size = 0, low, high
    elif high is None:  # randint(high, size=...)
        low, high = 0, low
    return Tensor(torch.randint(low, high, tuple(size), dtype=dtype or torch.int64,
                                device=device, generator=generator),
                  requires_grad=requires_grad)


def randperm(n, dtype=torch.int64, device=None, generator=None) -> Tensor:
    return Tensor(torch.randperm(n, dtype=dtype, device=device, generator=generator))


def normal(mean, std=1.0, size=None, *, generator=None, out=None, dtype=None,
           layout=None, device=None, pin_memory=False, requires_grad=False) -> Tensor:
    """Draws from N(mean, std^2), in torch.normal's forms (the same draws as torch for
    the same seed or generator, since they are torch's):

    - normal(mean_tensor, std_tensor), normal(mean_tensor, std=1.0),
      normal(mean_float, std_tensor): one draw per element of the broadcast shape, in
      the tensors' dtype and device; in the graph when mean or std requires grad, with
      gradient 0 for both, as torch defines it (write mean + std * randn_like(std) for a
      reparameterised sample);
    - normal(mean_float, std_float, size, dtype=, device=, requires_grad=): a new leaf.

    out= is not supported (assign the result instead)."""
    if out is not None:
        raise TypeError("normal: out= is not supported by handgrad; assign the result "
                        "instead (x = handgrad.normal(...)), or fill a tensor in place "
                        "with x.normal_(mean, std)")
    if isinstance(mean, Tensor | torch.Tensor) or isinstance(std, Tensor | torch.Tensor):
        given = [name for name, v in (("size", size), ("dtype", dtype), ("layout", layout),
                                      ("device", device)) if v is not None]
        given += ["pin_memory"] * bool(pin_memory) + ["requires_grad"] * bool(requires_grad)
        if given:
            raise TypeError(f"normal: {', '.join(given)} can only be given when mean and std "
                            "are both numbers; with a tensor mean or std the result takes "
                            "their broadcast shape, dtype and device")
        if not isinstance(mean, Tensor) and not isinstance(std, Tensor):  # torch tensors
            return Tensor(torch.normal(mean, std, generator=generator))
        return Normal.apply(mean, std, generator)
    if size is None:
        raise TypeError("normal: with numbers for mean and std, give the size, e.g. "
                        "normal(0.0, 1.0, (2, 3)), or pass a tensor mean or std")
    if isinstance(size, int):
        raise TypeError(f"normal: size must be a tuple of ints, got {size!r}; write "
                        f"({size},)")
    data = torch.normal(float(mean), float(std), tuple(size), generator=generator,
                        dtype=dtype, layout=layout, device=device, pin_memory=pin_memory)
    return Tensor(data, requires_grad=requires_grad)


def _like(torch_fn):
    def make(other, dtype=None, device=None, requires_grad=False, **kwargs):
        # kwargs: generator (rand_like, randn_like), memory_format, as torch takes them
        return Tensor(torch_fn(_raw(other), dtype=dtype, device=device, **kwargs),
                      requires_grad=requires_grad)

    make.__name__ = torch_fn.__name__
    make.__doc__ = f"Like torch.{torch_fn.__name__}."
    return make


zeros_like = _like(torch.zeros_like)
ones_like = _like(torch.ones_like)
empty_like = _like(torch.empty_like)
rand_like = _like(torch.rand_like)
randn_like = _like(torch.randn_like)


def full_like(other, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return Tensor(torch.full_like(_raw(other), _raw(fill_value), dtype=dtype, device=device),
                  requires_grad=requires_grad)


def randint_like(other, low=0, high=None, *, generator=None, dtype=None, device=None,
                 requires_grad=False) -> Tensor:
    """Random integers in [low, high) of `other`'s shape (and dtype, unless `dtype`)."""
    if high is None:
        low, high = 0, low
    kwargs = {} if generator is None else {"generator": generator}
    return Tensor(torch.randint_like(_raw(other), low, high, dtype=dtype, device=device,
                                     **kwargs), requires_grad=requires_grad)


def manual_seed(seed: int):
    """Seed torch's random generators (handgrad draws all random numbers through torch)
    and return torch's default CPU generator, as torch.manual_seed does. A generator of
    one's own is `handgrad.Generator().manual_seed(seed)` (torch's class), which every
    factory and in-place random method takes as `generator=`."""
    return torch.manual_seed(seed)


