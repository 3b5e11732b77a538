"""Optimizers and learning-rate schedules, with PyTorch's names, arguments and state_dicts.

In order of increasing complexity: SGD (with momentum and Nesterov), ASGD (averaged
iterates), Rprop (signs only), RMSprop, Adagrad, Adadelta, Adam (with AMSGrad), AdamW,
Adamax, NAdam, RAdam, Adafactor (factored second moments), Muon (orthogonalised
momentum for weight matrices), and the quasi-Newton LBFGS (closure, strong-Wolfe line
search). Each updates `p.data` in place from `p.grad.data`
with raw torch ops, following PyTorch's formulas operation for operation, and is proven
against PyTorch's optimizer of the same name in tests/optim. The Optimizer base class
(optimizer.py) holds the shared step loop, param_groups, state_dict and the step and
state_dict hooks. LR schedules live in `handgrad.optim.lr_scheduler`; weight averaging
(AveragedModel, SWALR, update_bn) in `handgrad.optim.swa_utils`.

Left out: gradient clipping (handgrad.nn.utils), SparseAdam (handgrad has no sparse
gradients: Embedding(sparse=True) is refused).
"""

from handgrad.optim import lr_scheduler, swa_utils
from handgrad.optim.adadelta import Adadelta
from handgrad.optim.adafactor import Adafactor
from handgrad.optim.adagrad import Adagrad
from handgrad.optim.adam import Adam, AdamW
from handgrad.optim.adamax import Adamax
from handgrad.optim.asgd import ASGD
from handgrad.optim.lbfgs import LBFGS
from handgrad.optim.muon import Muon
from handgrad.optim.nadam import NAdam
from handgrad.optim.optimizer import (
    Optimizer,
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)
from handgrad.optim.radam import RAdam
from handgrad.optim.rmsprop import RMSprop
from handgrad.optim.rprop import Rprop
from handgrad.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "ASGD", "Rprop", "RMSprop", "Adagrad", "Adadelta", "Adam",
           "AdamW", "Adamax", "NAdam", "RAdam", "Adafactor", "Muon", "LBFGS", "lr_scheduler",
           "swa_utils", "register_optimizer_step_pre_hook",
           "register_optimizer_step_post_hook"]
