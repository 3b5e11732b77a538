"""Optimizers and learning-rate schedules, with PyTorch's names, arguments and state_dicts.

In order of increasing complexity: SGD (with momentum and Nesterov), RMSprop, Adagrad,
Adam (with AMSGrad) and AdamW. Each updates `p.data` in place from `p.grad.data` with raw
torch ops, following PyTorch's formulas operation for operation, and is proven against
PyTorch's optimizer of the same name in tests/optim. LR schedules live in
`handgrad.optim.lr_scheduler`.

Left out: gradient clipping (handgrad.nn.utils), LBFGS and the rarer optimizers.
"""

from handgrad.optim import lr_scheduler
from handgrad.optim.adagrad import Adagrad
from handgrad.optim.adam import Adam, AdamW
from handgrad.optim.optimizer import Optimizer
from handgrad.optim.rmsprop import RMSprop
from handgrad.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "RMSprop", "Adagrad", "Adam", "AdamW", "lr_scheduler"]
