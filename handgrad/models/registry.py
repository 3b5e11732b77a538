"""The model registry: one small entry per model that `handgrad train NAME` trains.

    MODELS["mlp"]                       the entry: name, help, where its pieces live
    MODELS["mlp"].load()                its model module (config dataclass, builders, ...)
    entry_for(config)                   the entry of a config object (an MLPConfig -> "mlp")

`handgrad train` lists one subcommand per entry, in this order, with the entry's help;
the entry's `command` module provides `add_arguments(parser)` and `run(args)` as every
command module does (handgrad/cli.py). A new model (CNN, char-RNN, GPT, translator) is
one entry here plus its model module, which defines, as models/mlp.py does:

    the config dataclass (`config` names it) with to_dict() / from_dict(), a comment on
        every field, and `dataset`, `epochs`, `batch_size`, `seed` fields
    DATASETS            dataset name -> how to load it (with a `note` for --help)
    REFERENCE_CONFIGS   dataset name -> the default recipe (a config); a model with
                        variants (cnn: lenet, resnet) keys it by (variant, dataset)
    prepare_data, build_model, build_loss, build_optimizer, build_scheduler

This file imports nothing heavy (no torch): the `handgrad` command reads it to list its
subcommands. Left out: the scalar engine's `train scalar-mlp` (a command of its own in
handgrad/cli.py, on the stdlib-only engine).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

__all__ = ["ModelEntry", "MODELS", "entry_for", "get_entry"]


@dataclass(frozen=True)
class ModelEntry:
    """One model of `handgrad train NAME`."""

    name: str  # the subcommand: handgrad train NAME
    help: str  # its one-line help, shown by `handgrad train` and `handgrad --help`
    module: str  # the model module: config dataclass, DATASETS, REFERENCE_CONFIGS, builders
    config: str  # the name of the config dataclass in `module`
    default_dataset: str  # the dataset a run without --dataset trains on
    command: str = "handgrad.models.cli"  # add_arguments(parser) and run(args) of the command
    default_variant: str | None = None  # the config's `model` a run without --model uses

    def load(self) -> ModuleType:
        """The model module (imported on first use)."""
        return importlib.import_module(self.module)

    @property
    def config_class(self) -> type:
        return getattr(self.load(), self.config)

    def recipe(self, dataset: str | None = None, variant: str | None = None):
        """The default recipe (a config) for `dataset` (default: default_dataset). A model
        with variants (the CNN's lenet / resnet) keys its REFERENCE_CONFIGS by
        (variant, dataset); `variant` defaults to default_variant."""
        module = self.load()
        dataset = dataset or self.default_dataset
        variant = variant or self.default_variant
        key = dataset if variant is None else (variant, dataset)
        recipes = module.REFERENCE_CONFIGS
        if key in recipes:
            return recipes[key]
        if variant is None:
            return self.config_class(dataset)
        return self.config_class(dataset, model=variant)


MODELS: dict[str, ModelEntry] = {entry.name: entry for entry in (
    ModelEntry("mlp", "train a reference MLP (clusters ... mnist) with the Learner: curves, "
               "checkpoint, results", module="handgrad.models.mlp", config="MLPConfig",
               default_dataset="clusters"),
    ModelEntry("cnn", "train LeNet-5 or a small ResNet on digits, MNIST-5k or MNIST with the "
               "Learner: curves, misclassified images, checkpoint, results",
               module="handgrad.models.cnn", config="CNNConfig", default_dataset="mnist5k",
               default_variant="lenet"),
    ModelEntry("char-rnn", "train a character-level RNN / LSTM / GRU language model on "
               "tiny-shakespeare (or any text) with truncated BPTT: nats/char, samples, "
               "checkpoint", module="handgrad.models.char_rnn", config="CharRNNConfig",
               default_dataset="tiny-shakespeare", command="handgrad.models.char_rnn_cli"),
    ModelEntry("gpt", "train a character-level GPT (nanoGPT's shape) on tiny-shakespeare (or "
               "any text): warm-up + cosine AdamW, nats/char, samples, checkpoint",
               module="handgrad.models.gpt", config="GPTConfig",
               default_dataset="tiny-shakespeare", command="handgrad.models.gpt_cli"),
    ModelEntry("translator", "train an English -> French Transformer on Tatoeba pairs "
               "(teacher forcing, label smoothing, warm-up + cosine): BLEU / chrF / exact "
               "match on held-out sentences, checkpoint", module="handgrad.models.translator",
               config="TranslatorConfig", default_dataset="tatoeba-5k",
               command="handgrad.models.translator_cli"),
)}


def get_entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise ValueError(f"no model named {name!r} in the registry; choose one of "
                         f"{', '.join(MODELS)}")
    return MODELS[name]


def entry_for(config) -> ModelEntry:
    """The entry whose config dataclass `config` is an instance of."""
    for entry in MODELS.values():
        if type(config).__module__ == entry.module and type(config).__name__ == entry.config:
            return entry
    raise ValueError(f"{type(config).__name__} is the config of no registered model; "
                     f"registered: {', '.join(f'{e.name} ({e.config})' for e in MODELS.values())}")
