"""The `handgrad` command's front door: every subcommand is reachable, bench core runs."""

import json
import subprocess
import sys

import pytest

from handgrad.cli import COMMANDS, main


def test_bench_core_quick_writes_json(tmp_path, capsys):
    path = tmp_path / "core.json"
    assert main(["bench", "core", "--quick", "--threads", "1", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "worst op" in out and "matmul" in out
    figures = json.loads(path.read_text())
    assert figures["benchmark"] == "core" and figures["quick"] is True
    assert figures["machine"]["threads"] == 1
    assert set(figures["tiny_ops"]) >= {"add", "matmul", "softmax"}
    assert figures["matmul"]["ratio"] > 0 and figures["tiny_worst_ratio"] > 0


@pytest.mark.parametrize("words", [w for w, _, _ in COMMANDS], ids=" ".join)
def test_every_subcommand_has_help(words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage: handgrad " + " ".join(words) in capsys.readouterr().out


def test_python_dash_m_runs_the_same_command():
    done = subprocess.run([sys.executable, "-m", "handgrad", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for words, _, _ in COMMANDS:
        assert words[0] in done.stdout


def test_version(capsys):
    import handgrad

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"handgrad {handgrad.__version__}"


def test_bare_handgrad_lists_every_command_and_exits_0(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for words, _, help_text in COMMANDS:
        assert " ".join(words) in out and help_text in out


@pytest.mark.parametrize("group", ["train", "bench"])
def test_a_group_alone_lists_its_subcommands_and_exits_2(group, capsys):
    assert main([group]) == 2
    captured = capsys.readouterr()
    for words, _, help_text in COMMANDS:
        assert (help_text in captured.out) == (words[0] == group)
    assert f"handgrad {group}: choose a subcommand" in captured.err


def test_ctrl_c_in_any_command_is_one_line_and_status_130(monkeypatch, capsys):
    import handgrad.scalar.draw as draw

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(draw, "run", interrupted)
    assert main(["graph", "--out", "-"]) == 130
    assert capsys.readouterr().err.strip() == "handgrad graph: interrupted"
