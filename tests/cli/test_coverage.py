"""`handgrad coverage`: every name it checks exists in torch (so the list stays honest),
the figures add up, and the command prints them."""

from __future__ import annotations

import json

from handgrad.cli import main
from handgrad.testing import coverage


def test_every_listed_name_is_torch_s():
    for name, (_, theirs) in coverage._namespaces().items():
        unknown = [n for n in coverage.MOST_USED[name].split() if not coverage._has(theirs, n)]
        assert not unknown, f"{name}: not in torch: {unknown}"


def test_figures_add_up(tmp_path, capsys):
    path = tmp_path / "coverage.json"
    assert main(["coverage", "--all", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    result = json.loads(path.read_text())
    for name, row in result.items():
        assert row["present"] + len(row["missing"]) == row["total"]
        assert 0 < row["all_present"] <= row["all_total"]
        assert name in out
    assert result["nn"]["present"] / result["nn"]["total"] > 0.5
