"""`handgrad bench data` (handgrad/bench/data.py) runs: --quick smoke test, JSON
figures, and clear errors. What workers buy is measured by the full command, not here."""

import json

from handgrad.cli import main


def test_bench_data_quick_writes_json(tmp_path, capsys):
    path = tmp_path / "data.json"
    assert main(["bench", "data", "--quick", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| workload | num_workers |" in out and "--quick" in out
    figures = json.loads(path.read_text())
    assert figures["benchmark"] == "data" and figures["quick"] is True
    assert figures["settings"]["workers"] == [0, 2] and figures["settings"]["items"] == 16
    assert figures["machine"]["cpus_usable"] >= 1
    rows = figures["results"]
    assert [(r["workload"], r["num_workers"]) for r in rows] == [
        ("sleep", 0), ("sleep", 2), ("cpu", 0), ("cpu", 2)]
    assert all(r["cold_s"] > 0 and r["warm_s"] > 0 and r["speedup_warm"] > 0 for r in rows)


def test_bench_data_bad_flags(capsys):
    assert main(["bench", "data", "--workload", "disk"]) == 2
    assert "--workload: choose sleep and/or cpu" in capsys.readouterr().err
    assert main(["bench", "data", "--workers", "0,-1"]) == 2
    assert "--workers wants comma-separated counts" in capsys.readouterr().err
