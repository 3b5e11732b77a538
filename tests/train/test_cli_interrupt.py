"""`handgrad train mlp` interrupted by Ctrl-C, and resumed: one line that gives the resume
command, no traceback, exit status 130; --resume goes on in the checkpoint's folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from handgrad.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_prints_one_resume_line_and_exits_130(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "handgrad", "train", "mlp", "--dataset", "clusters",
               "--hidden", "8", "--epochs", "100000", "--scheduler", "none", "--quiet",
               "--no-plots", "--out", str(out)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    checkpoint = out / "checkpoint.safetensors"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), process.communicate(timeout=30)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = [line for line in stderr.splitlines() if "resume" in line]
    assert len(lines) == 1, stderr
    assert lines[0].endswith(f"handgrad train mlp --resume {checkpoint} --epochs 100000 "
                             f"--out {out} --quiet --no-plots"), lines[0]


def test_resume_writes_into_the_checkpoints_folder(tmp_path, monkeypatch, capsys):
    threads = torch.get_num_threads()
    monkeypatch.chdir(tmp_path)  # a default runs/mlp-... folder would land here
    out = tmp_path / "first"
    common = ["--quiet", "--no-plots"]
    assert main(["train", "mlp", "--dataset", "moons", "--hidden", "8", "--scheduler",
                 "none", "--epochs", "1", "--out", str(out), *common]) == 0
    assert main(["train", "mlp", "--resume", str(out / "checkpoint.safetensors"),
                 "--epochs", "2", *common]) == 0
    assert json.loads((out / "results.json").read_text())["epochs_done"] == 2
    assert not (tmp_path / "runs").exists()
    assert f"writing to {out}/" in capsys.readouterr().out
    torch.set_num_threads(threads)
