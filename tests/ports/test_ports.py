"""Real PyTorch scripts run on handgrad by changing only their imports.

Each file in scripts/ is a torch training script as its users write it (the
pytorch/tutorials polynomial steps, quickstart and char-RNN name classifier,
pytorch/examples' regression, VAE, DCGAN and word language model, a spatial-transformer
CNN, a Transformer classifier, a fine-tuning script with frozen layers and four LR
schedulers, Karpathy's makemore MLP and nanoGPT, a course's trainer class), re-written in
this project's own words. The test runs it twice in a fresh namespace: as it is, with
torch, and with its import lines rewritten to handgrad's (the only lines allowed to
differ; the test checks that). Each script appends what it wants compared (losses step by
step, final weights, accuracies, sampled names) to a list named LOSSES; the two lists
must agree.

To add a script: put it in scripts/, make it record into LOSSES, keep it to a few seconds.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")

SCRIPTS = Path(__file__).parent / "scripts"

# torch import line -> handgrad import line (whole lines, so nothing else can change)
# (every torch module keeps its name under handgrad: torch.nn.utils.rnn, torch.optim.
# lr_scheduler, torch.utils.data; a bare `import torch.X` binds the name handgrad, and the
# script's `torch` is handgrad already)
IMPORTS = [
    (r"^import torch$", "import handgrad as torch"),
    (r"^import torch\.([\w.]+)( as \w+)?$", r"import handgrad.\1\2"),
    (r"^from torch import (.*)$", r"from handgrad import \1"),
    (r"^from torch\.([\w.]+) import (.*)$", r"from handgrad.\1 import \2"),
]


def ported(source: str) -> str:
    lines = []
    for line in source.splitlines():
        for pattern, replacement in IMPORTS:
            if re.match(pattern, line):
                line = re.sub(pattern, replacement, line)
                break
        lines.append(line)
    return "\n".join(lines) + "\n"


def run(source: str, name: str) -> list:
    namespace = {"__name__": f"port_{name}"}
    # dont_inherit: not this file's `from __future__ import annotations` (a script's
    # dataclass would then look its string annotations up in a module that isn't there)
    code = compile(source, f"{name}.py", "exec", dont_inherit=True)
    exec(code, namespace)  # noqa: S102 (our own scripts)
    return namespace["LOSSES"]


def same(a, b, rel: float) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=rel, abs_tol=rel)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y, rel) for x, y in zip(a, b))
    return a == b


# float32 scripts: the same ops in the same order, so agreement is close to exact; a few
# hundred steps let rounding of different kernels drift a little
TOLERANCE = {"quickstart": 1e-4, "makemore_mlp": 1e-4, "step_by_step": 1e-5}


@pytest.mark.parametrize("name", sorted(p.stem for p in SCRIPTS.glob("*.py")))
def test_script_ports_by_swapping_imports(name, capsys):
    source = (SCRIPTS / f"{name}.py").read_text()
    handgrad_source = ported(source)
    changed = [(a, b) for a, b in zip(source.splitlines(), handgrad_source.splitlines())
               if a != b]
    assert changed, "the script imports nothing from torch"
    assert all(b.startswith(("import handgrad", "from handgrad")) for _, b in changed)
    expected = run(source, name)
    got = run(handgrad_source, name)
    capsys.readouterr()
    assert len(got) == len(expected)
    rel = TOLERANCE.get(name, 1e-5)
    bad = [i for i, (x, y) in enumerate(zip(expected, got)) if not same(x, y, rel)]
    assert not bad, (f"{name}: {len(bad)} of {len(expected)} records differ, first at "
                     f"{bad[0]}: torch {expected[bad[0]]!r}, handgrad {got[bad[0]]!r}")
