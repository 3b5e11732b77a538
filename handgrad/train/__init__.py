"""handgrad.train: what a training run needs around the model and the optimizer.

* ``checkpoint.py``: safetensors for tensors plus JSON for the rest, written atomically
  and loaded without unpickling, and the helpers that turn nested state (optimizer
  state, RNG states) into tensors plus JSON and back.
* ``learner.py``: the plain ``fit()`` a newcomer reads top to bottom, and the
  ``Learner`` with ordered callbacks (``callbacks.py``), ``metrics.py``, ``plots.py``
  and the LR finder (``lr_finder.py``).
* ``distributed.py``: what the Learner does when torch.distributed runs several
  processes (figures summed over the ranks, rank-zero-only callbacks, barriers, a
  failing rank named in the others' errors); see docs/distributed.md.
"""

from handgrad.train.checkpoint import (
    CheckpointError,
    flatten_state,
    get_rng_state,
    load_checkpoint,
    load_state,
    save_checkpoint,
    save_state,
    set_rng_state,
    unflatten_state,
)

__all__ = [
    "CheckpointError", "flatten_state", "get_rng_state", "load_checkpoint", "load_state",
    "save_checkpoint", "save_state", "set_rng_state", "unflatten_state",
]

# The fit loop (Learner and the plain fit()), its callbacks, metrics, LR finder and plots.
from handgrad.train import metrics, plots  # noqa: E402  (train.metrics.accuracy, ...)
from handgrad.train.callbacks import (  # noqa: E402
    Callback,
    DeviceCallback,
    EarlyStopping,
    EpochTable,
    GradientClipping,
    History,
    LearningCurves,
    LRSchedulerCallback,
    NaNGuard,
    NonFiniteLossError,
    ProgressBar,
    SaveCheckpoint,
)
from handgrad.train.learner import (  # noqa: E402
    EVENTS,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    Learner,
    check_state_dict,
    fit,
)
from handgrad.train.lr_finder import LRFinder, LRFindResult, lr_find  # noqa: E402
from handgrad.train.metrics import accuracy, confusion_matrix, mae, mse, top_k_accuracy  # noqa: E402

__all__ += [
    "EVENTS", "Callback", "CancelBatchException", "CancelEpochException", "CancelFitException",
    "DeviceCallback", "EarlyStopping", "EpochTable", "GradientClipping", "History", "LRFinder",
    "LRFindResult", "LRSchedulerCallback", "LearningCurves", "Learner", "NaNGuard",
    "NonFiniteLossError", "ProgressBar", "SaveCheckpoint", "accuracy", "check_state_dict",
    "confusion_matrix", "fit", "lr_find", "mae", "metrics", "mse", "plots", "top_k_accuracy",
]
