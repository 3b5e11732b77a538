"""The model registry behind `handgrad train NAME`: one entry per model, read without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from handgrad.cli import COMMANDS
from handgrad.models.mlp import REFERENCE_CONFIGS, MLPConfig
from handgrad.models.registry import MODELS, entry_for, get_entry


def test_every_registered_model_is_a_train_subcommand_with_its_help():
    rows = {words[1]: (module, text) for words, module, text in COMMANDS
            if words[0] == "train"}
    for name, entry in MODELS.items():
        assert rows[name] == (entry.command, entry.help)


def test_the_mlp_entry_gives_its_config_class_and_recipes():
    entry = get_entry("mlp")
    assert entry.config_class is MLPConfig
    assert entry.recipe() == REFERENCE_CONFIGS["clusters"]
    assert entry.recipe("digits") == REFERENCE_CONFIGS["digits"]
    assert entry_for(MLPConfig()) is entry
    with pytest.raises(ValueError, match="no model named 'vae'.*mlp"):
        get_entry("vae")
    with pytest.raises(ValueError, match="config of no registered model"):
        entry_for(object())


def test_listing_the_commands_imports_no_torch():
    check = ("import sys; from handgrad.cli import main; main([]); "
             "bad = {'torch', 'numpy'} & set(sys.modules); assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "train mlp" in done.stdout
