"""The one helper behind the optimizer tests: the same tiny net trained side by side with
a handgrad optimizer and PyTorch's optimizer of the same name, in float64.

The net is `((x @ w1 + b1).tanh() @ w2 - y)^2` averaged, plus a bias `c` that enters the
loss only every third step (so it sometimes has no gradient, or a zero one after
`zero_grad(set_to_none=False)`), and a tensor that never gets a gradient at all.
"""

from __future__ import annotations

import torch

import handgrad
from handgrad import optim

TOLERANCE = 1e-10


def initial_values(seed: int = 0, device: str = "cpu") -> list[torch.Tensor]:
    """Starting values of the parameters: w1, b1, w2, c, never_used."""
    g = torch.Generator().manual_seed(seed)
    shapes_and_scales = [((5, 8), 0.5), ((8,), 0.1), ((8, 3), 0.5), ((3,), 0.1), ((4,), 1.0)]
    return [(torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(device)
            for shape, scale in shapes_and_scales]


def data(seed: int = 1, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64)
    y = torch.randn(16, 3, generator=g, dtype=torch.float64)
    return x.to(device), y.to(device)


def loss_of(params, x, y, step: int):
    """The loss for either library: params are handgrad or torch tensors alike."""
    w1, b1, w2, c, _ = params
    out = (x @ w1 + b1).tanh() @ w2 - y
    if step % 3 == 0:
        out = out + c
    return out.pow(2).mean()


class Pair:
    """A handgrad optimizer and its PyTorch twin over copies of the same parameters."""

    def __init__(self, name: str, options: dict, groups: list[tuple[list[int], dict]] | None = None,
                 device: str = "cpu", seed: int = 0):
        values = initial_values(seed, device)
        self.torch_params = [v.clone().requires_grad_() for v in values]
        self.params = [handgrad.tensor(v.clone(), requires_grad=True) for v in values]
        self.x, self.y = data(device=device)
        self.hx, self.hy = handgrad.tensor(self.x), handgrad.tensor(self.y)
        self.name = name
        self.optimizer = getattr(optim, name)(self._groups(self.params, groups), **options)
        torch_options = {k: v for k, v in options.items() if k != "foreach"}
        self.torch_optimizer = getattr(torch.optim, name)(
            self._groups(self.torch_params, groups), **torch_options)
        self.steps_done = 0

    @staticmethod
    def _groups(params, groups):
        if groups is None:
            return list(params)
        return [{"params": [params[i] for i in indices], **options}
                for indices, options in groups]

    def step(self, set_to_none: bool = True) -> None:
        """One training step in each library (zero_grad, loss, backward, step)."""
        for optimizer, params, x, y in ((self.optimizer, self.params, self.hx, self.hy),
                                        (self.torch_optimizer, self.torch_params, self.x,
                                         self.y)):
            optimizer.zero_grad(set_to_none=set_to_none)
            loss_of(params, x, y, self.steps_done).backward()
            optimizer.step()
        self.steps_done += 1

    def run(self, steps: int = 20, set_to_none: bool = True) -> Pair:
        """`steps` training steps, checking the parameters agree after each one."""
        for _ in range(steps):
            self.step(set_to_none)
            self.assert_params_match()
        return self

    def assert_params_match(self, tolerance: float = TOLERANCE) -> None:
        for i, (p, t) in enumerate(zip(self.params, self.torch_params)):
            difference = (p.data - t.detach()).abs().max().item()
            assert difference <= tolerance, (
                f"{self.name}: parameter {i} {tuple(t.shape)} differs from torch by "
                f"{difference:.3g} after step {self.steps_done}")

    def assert_state_matches(self, tolerance: float = TOLERANCE) -> None:
        """Same state names per parameter, same buffer values, same step counts."""
        ours = self.optimizer.state_dict()["state"]
        theirs = self.torch_optimizer.state_dict()["state"]
        assert sorted(ours) == sorted(theirs), f"{self.name}: parameters with state differ"
        for index in theirs:
            assert set(ours[index]) == set(theirs[index]), (
                f"{self.name}: state names of parameter {index}: {sorted(ours[index])} vs "
                f"torch {sorted(theirs[index])}")
            for key, value in theirs[index].items():
                mine = ours[index][key]
                assert (mine - value).abs().max().item() <= tolerance, (
                    f"{self.name}: state[{index}][{key!r}] differs from torch")
