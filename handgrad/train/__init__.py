"""handgrad.train: what a training run needs around the model and the optimizer.

For now: checkpoints (``checkpoint.py``) -- safetensors for tensors plus JSON for the
rest, written atomically and loaded without unpickling -- and the helpers that turn
nested state (optimizer state, RNG states) into tensors plus JSON and back.
The fit loop (Learner), callbacks, metrics and plots come later.
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
