"""The options that train, demo and bench share come from one function, with each
command's own defaults kept."""

from __future__ import annotations

import argparse

import pytest

from handgrad.models.options import add_common_arguments, resolve_device, set_threads


def _defaults(module: str) -> dict:
    import importlib

    parser = argparse.ArgumentParser()
    importlib.import_module(module).add_arguments(parser)
    return {a.dest: a.default for a in parser._actions if a.dest != "help"}


@pytest.mark.parametrize("module, expected", [
    ("handgrad.models.cli", {"device": "cpu", "threads": 1, "seed": None}),
    ("handgrad.demo", {"device": "cpu", "threads": 1}),
    ("handgrad.bench.core", {"device": "cpu", "threads": None, "json": None}),
    ("handgrad.bench.mlp", {"device": "cpu", "threads": None, "json": None}),
    ("handgrad.bench.scalar", {"seed": 1337, "json": None}),
])
def test_each_command_keeps_its_defaults(module, expected):
    defaults = _defaults(module)
    assert {key: defaults[key] for key in expected} == expected


def test_only_the_asked_options_are_added_and_checked():
    parser = argparse.ArgumentParser()
    add_common_arguments(parser, threads=1)
    assert parser.parse_args([]).threads == 1 and not hasattr(parser.parse_args([]), "device")
    with pytest.raises(ValueError, match="--threads must be >= 0"):
        set_threads(-1)
    with pytest.raises(ValueError, match="--device tpu: not a device"):
        resolve_device("tpu")
    assert str(resolve_device("cpu")) == "cpu"
