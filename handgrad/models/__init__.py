"""handgrad.models: reference models that the `handgrad` command and the examples train.

    mlp.py   MLPConfig (a run's data, network and recipe), REFERENCE_CONFIGS (one per
             dataset, the recipes behind the figures in docs/training.md) and the
             builders: prepare_data, build_model, build_loss, build_optimizer,
             build_scheduler
    cnn.py   CNNConfig, LeNet5, BasicBlock, ResNet, REFERENCE_CONFIGS keyed (model,
             dataset) and the same builders, for digits, MNIST-5k and MNIST images
             (import handgrad.models.cnn)
    cli.py   the `handgrad train mlp` / `handgrad train cnn` command (train(config, out)
             does the whole run, for any registered model's config)
    char_rnn.py  CharRNNConfig, Vocabulary, StreamBatches (TBPTT batches), CharRNN
             (embedding or one-hot -> RNN/LSTM/GRU -> Linear), CarryState, stream_nats,
             generate (import handgrad.models.char_rnn)
    char_rnn_cli.py  the `handgrad train char-rnn` / `train gpt` run (train(config, out)
             for a CharRNNConfig or a GPTConfig: validation in nats/char, samples)
    gpt.py   GPTConfig, GPT (nanoGPT's shape: pre-norm causal blocks, tied head),
             KVCache, RandomWindows, window_nats; gpt_cli.py: `handgrad train gpt`
    decoding.py  greedy, temperature, top-k, top-p sampling for every language model,
             streaming through the GPT's KV cache; sampling_speed
    translator.py  TranslatorConfig, Translator (nn.Transformer encoder-decoder), greedy
             and beam search over a decoder KV cache, sacrebleu scoring; tokenizer.py
             the word-level tokenizer; translator_cli.py / translate.py: `handgrad
             train translator` and `handgrad translate`
    sample.py, evaluate.py  `handgrad sample CKPT` and `handgrad evaluate CKPT --text FILE`
             (char-RNN and GPT checkpoints alike)
    registry.py  MODELS: one small entry per model of `handgrad train NAME`
    options.py   the options train, demo and bench share (--device, --threads, --seed,
                 --json), set_threads and resolve_device

The MLP's names are imported on first use (so that the `handgrad` command can read the
registry without importing torch).

The CNN's names live in handgrad.models.cnn only (its REFERENCE_CONFIGS and builders
share the MLP's names).

Left out: subword (BPE) tokenization for the translator (measured worse on the 5k
pairs, docs/translation.md).
"""

import importlib

from handgrad.models.registry import MODELS, ModelEntry, entry_for, get_entry

_MLP_NAMES = (
    "DATASETS", "REFERENCE_CONFIGS", "MLPConfig", "PreparedData", "build_loss", "build_model",
    "build_optimizer", "build_scheduler", "prepare_data", "reference_config",
)

__all__ = [*_MLP_NAMES, "MODELS", "ModelEntry", "entry_for", "get_entry"]


def __getattr__(name: str):
    if name in _MLP_NAMES:
        return getattr(importlib.import_module("handgrad.models.mlp"), name)
    raise AttributeError(f"module 'handgrad.models' has no attribute {name!r}")
