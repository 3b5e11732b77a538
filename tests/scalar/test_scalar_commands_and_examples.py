"""Smoke tests: the examples, `handgrad train scalar-mlp`, `handgrad bench scalar`, and
that the scalar engine stands alone (no torch, numpy or any other non-stdlib import)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from handgrad.cli import main

ROOT = Path(__file__).resolve().parents[2]
SCALAR = ROOT / "handgrad" / "scalar"


def run_python(*args, cwd=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_examples_run(tmp_path):
    lecture = run_python(str(ROOT / "examples" / "scalar_lecture.py"), "--steps", "3")
    assert lecture.returncode == 0, lecture.stderr
    assert "step   2  loss" in lecture.stdout
    moons = run_python(str(ROOT / "examples" / "scalar_moons.py"), "--steps", "2",
                       "--out", str(tmp_path / "moons.png"))
    assert moons.returncode == 0, moons.stderr
    assert (tmp_path / "moons.png").read_bytes().startswith(b"\x89PNG")


def test_examples_are_short_and_use_the_public_api():
    for name in ("scalar_lecture.py", "scalar_moons.py"):
        source = (ROOT / "examples" / name).read_text()
        assert len(source.splitlines()) < 100
        assert "._" not in source.replace("__doc__", "")  # no private names


def test_train_scalar_mlp_command(tmp_path, capsys):
    out = tmp_path / "boundary.png"
    assert main(["train", "scalar-mlp", "--dataset", "moons", "--steps", "2", "--quiet",
                 "--out", str(out)]) == 0
    assert "training accuracy" in capsys.readouterr().out
    assert out.read_bytes().startswith(b"\x89PNG")
    assert main(["train", "scalar-mlp", "--dataset", "lecture", "--quiet"]) == 0
    assert "(below 1e-4)" in capsys.readouterr().out


def test_bench_scalar_quick(tmp_path, capsys):
    pytest.importorskip("micrograd", reason="micrograd is the benchmark's baseline "
                                            "(pip install -e '.[bench]')")
    path = tmp_path / "scalar.json"
    assert main(["bench", "scalar", "--quick", "--json", str(path)]) == 0
    figures = json.loads(path.read_text())
    assert figures["quick"] is True and figures["points"] == 20
    assert figures["max_difference"] < 1e-9  # both engines computed the same thing
    for key in ("micrograd_s", "handgrad_s", "node_for_node_s", "ratio_handgrad",
                "ratio_node_for_node"):
        assert figures[key] > 0
    assert "faster" in capsys.readouterr().out


@pytest.mark.parametrize("code", [
    "import handgrad.scalar",
    "import handgrad.scalar.train",
    "from handgrad.cli import main; main(['graph', '--out', '-'])",
])
def test_the_scalar_engine_never_imports_torch_or_numpy(code):
    check = "; import sys; bad = {'torch', 'numpy'} & set(sys.modules); assert not bad, bad"
    result = run_python("-c", code + check, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_scalar_modules_import_only_the_standard_library_at_top_level():
    for path in SCALAR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # top level only: lazy imports inside functions are fine
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name.startswith("handgrad.scalar") \
                    or top == "__future__", f"{path.name} imports {name}"
