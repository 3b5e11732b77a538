"""`handgrad bench ddp` (handgrad/bench/ddp.py) runs: --quick over 1 and 2 processes
emits a table and JSON with both libraries' steps/s, the speed-up and the wait share;
bad flags are refused. How fast DDP is comes from the full command, never from a test."""

import json

from handgrad.cli import main


def test_bench_ddp_quick_writes_json(tmp_path, capsys):
    path = tmp_path / "ddp.json"
    assert main(["bench", "ddp", "--quick", "--models", "mlp", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "handgrad steps/s" in out and "torch steps/s" in out
    figures = json.loads(path.read_text())
    assert figures["benchmark"] == "ddp" and figures["quick"] is True
    rows = figures["results"]
    assert [(r["model"], r["processes"]) for r in rows] == [("mlp", 1), ("mlp", 2)]
    for row in rows:
        assert row["handgrad_steps_per_s"] > 0 and row["torch_steps_per_s"] > 0
        assert 0 <= row["handgrad_wait_share"] <= 1
    assert rows[0]["handgrad_speedup"] == 1.0


def test_bench_ddp_refuses_bad_flags(capsys):
    assert main(["bench", "ddp", "--models", "resnet"]) == 2
    assert "--models: choose among mlp, lenet" in capsys.readouterr().err
    assert main(["bench", "ddp", "--processes", "0"]) == 2
    assert "--processes wants" in capsys.readouterr().err
