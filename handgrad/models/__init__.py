"""handgrad.models: reference models that the `handgrad` command and the examples train.

    mlp.py   MLPConfig (a run's data, network and recipe), REFERENCE_CONFIGS (one per
             dataset, the recipes behind the figures in docs/training.md) and the
             builders: prepare_data, build_model, build_loss, build_optimizer,
             build_scheduler
    cli.py   the `handgrad train mlp` command (train(config, out) does the whole run)

Left out: convolutional and recurrent reference models (not yet written).
"""

from handgrad.models.mlp import (
    DATASETS,
    REFERENCE_CONFIGS,
    MLPConfig,
    PreparedData,
    build_loss,
    build_model,
    build_optimizer,
    build_scheduler,
    prepare_data,
    reference_config,
)

__all__ = [
    "DATASETS", "REFERENCE_CONFIGS", "MLPConfig", "PreparedData", "build_loss", "build_model",
    "build_optimizer", "build_scheduler", "prepare_data", "reference_config",
]
