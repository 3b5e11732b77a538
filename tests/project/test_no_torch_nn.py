"""The one rule (ARCHITECTURE.md section 1): inside handgrad/, PyTorch is only an array
library. handgrad/bench/ (the benchmarks) and the torch oracle of handgrad/testing/
(oracle.py, registry/) are the one exception; its finite-difference checks are scanned.

The scan reads every module's syntax tree (so docstrings and comments that *mention*
torch.nn are fine) and reports, with file and line:

* imports of torch.nn, torch.autograd, torch.optim, torch.utils.data, torch.func (in
  any spelling: `import torch.nn as nn`, `from torch import nn`, `from torch.nn import F`);
* attribute chains through those namespaces or naming torch's NN-level kernels
  (`torch.softmax`, `torch.conv2d`, `torch.max_pool2d`, `torch.batch_norm`, ...), also
  through an alias such as `import torch as th`, or `getattr(torch, "softmax")`;
* `requires_grad=True` passed to a torch factory;
* inside a Function's forward/backward, where every tensor is a raw torch tensor:
  `.backward(`, `.requires_grad_(`, `.requires_grad = ...`, and kernel methods such as
  `.softmax(` or `.logsumexp(`.

Outside Functions a method name cannot tell a torch tensor from a handgrad Tensor (both
have `.softmax()`), so method calls there are left to review. Also checked: importing
handgrad.scalar never imports torch.

Left out: anything in tests/, handgrad/bench/, handgrad/testing/oracle.py and
handgrad/testing/registry/, where torch is the reference, and handgrad/testing/coverage.py
(`handgrad coverage`), which reads the names torch.nn and torch.optim define.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "handgrad"
EXEMPT = (PACKAGE / "bench", PACKAGE / "testing" / "oracle.py", PACKAGE / "testing" / "registry",
          PACKAGE / "testing" / "coverage.py")  # reads torch.nn's names, runs nothing

FORBIDDEN_MODULES = ("torch.nn", "torch.autograd", "torch.optim", "torch.utils.data",
                     "torch.func", "torch._C._nn", "torch.ops")
# torch.<name> kernels that are what handgrad implements by hand.
FORBIDDEN_KERNELS = re.compile(
    r"^(softmax|log_softmax|logsumexp|_softmax|_log_softmax|conv\w*|\w*_pool\w*|"
    r"\w*batch_norm\w*|layer_norm|group_norm|instance_norm|\w*dropout\w*|embedding\w*|"
    r"lstm\w*|gru\w*|rnn_\w*|scaled_dot_product_attention|\w*cross_entropy\w*|"
    r"nll_loss\w*|gelu|unfold|binary_cross_entropy\w*|ctc_loss|hinge_embedding_loss|"
    r"kl_div|cosine_embedding_loss|margin_ranking_loss|poisson_nll_loss|triplet_margin_loss|"
    r"pixel_shuffle|pdist|cdist)$")
# Tensor methods that are the same kernels (checked inside Function bodies only).
# (Tensor.unfold, a strided view, is allowed: views and strides are array-library work.)
FORBIDDEN_METHODS = {"softmax", "log_softmax", "logsumexp", "backward", "requires_grad_",
                     "retain_grad", "register_hook"}


def _dotted(node: ast.AST) -> str | None:
    """'a.b.c' for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _forbidden_path(path: str) -> str | None:
    """Why the fully qualified torch path is off limits, or None."""
    for module in FORBIDDEN_MODULES:
        if path == module or path.startswith(module + "."):
            return f"uses {module}"
    head, _, rest = path.partition(".")
    rest = rest.removeprefix("Tensor.")  # torch.Tensor.softmax(x) is torch.softmax(x)
    if head == "torch" and rest and "." not in rest and FORBIDDEN_KERNELS.match(rest):
        return f"calls torch's NN kernel {path}"
    return None


def _is_function_class(node: ast.ClassDef) -> bool:
    names = {_dotted(base) or "" for base in node.bases}
    return any(n.split(".")[-1] == "Function" for n in names)


class _Scanner(ast.NodeVisitor):
    def __init__(self):
        self.aliases: dict[str, str] = {}  # local name -> torch path it stands for
        self.problems: list[tuple[int, str]] = []
        self.in_function_body = 0

    def report(self, node: ast.AST, why: str) -> None:
        self.problems.append((node.lineno, why))

    # ---- imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "torch" or alias.name.startswith("torch."):
                why = _forbidden_path(alias.name)
                if why:
                    self.report(node, f"import {alias.name}: {why}")
                # `import torch.nn` binds `torch`; `import torch.nn as nn` binds nn
                local = alias.asname or alias.name.split(".")[0]
                self.aliases[local] = alias.name if alias.asname else "torch"
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if module == "torch" or module.startswith("torch."):
            for alias in node.names:
                path = f"{module}.{alias.name}"
                why = _forbidden_path(module) or _forbidden_path(path)
                if why:
                    self.report(node, f"from {module} import {alias.name}: {why}")
                self.aliases[alias.asname or alias.name] = path
        self.generic_visit(node)

    # ---- attribute chains through torch (or an alias of it)
    def _resolve(self, node: ast.AST) -> str | None:
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if head not in self.aliases:
            return None
        return self.aliases[head] + ("." + rest if rest else "")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        path = self._resolve(node)
        if path is not None:
            why = _forbidden_path(path)
            if why:
                self.report(node, f"{_dotted(node)}: {why}")
                return  # one report per chain
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        target = self._resolve(node.func)
        if target is not None:
            for keyword in node.keywords:
                if keyword.arg == "requires_grad" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False):
                    self.report(node, f"{_dotted(node.func)}(requires_grad=...): torch "
                                      "tensors never require grad inside handgrad")
        if (isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2
                and self._resolve(node.args[0]) is not None
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
            path = f"{self._resolve(node.args[0])}.{node.args[1].value}"
            why = _forbidden_path(path)
            if why:
                self.report(node, f"getattr(..., {node.args[1].value!r}): {why}")
        if self.in_function_body and isinstance(node.func, ast.Attribute) \
                and node.func.attr in FORBIDDEN_METHODS:
            self.report(node, f".{node.func.attr}() on a raw torch tensor inside a Function")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if self.in_function_body:
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "requires_grad":
                    self.report(node, "sets .requires_grad on a raw torch tensor inside a "
                                      "Function")
        self.generic_visit(node)

    # ---- Function bodies: every tensor there is a raw torch tensor
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if not _is_function_class(node):
            self.generic_visit(node)
            return
        for item in node.body:
            is_body = isinstance(item, ast.FunctionDef) and item.name in ("forward", "backward")
            self.in_function_body += is_body
            self.visit(item)
            self.in_function_body -= is_body


def scan(source: str) -> list[tuple[int, str]]:
    scanner = _Scanner()
    scanner.visit(ast.parse(source))
    return sorted(scanner.problems)


def _package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if not any(e == p or e in p.parents for e in EXEMPT))


def test_the_package_uses_torch_only_as_an_array_library():
    found = []
    for path in _package_files():
        for line, why in scan(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {why}")
    assert not found, (
        "PyTorch beyond an array library inside handgrad/ (ARCHITECTURE.md section 1; "
        "only handgrad/bench/ and the oracle in handgrad/testing/ may do this):\n  "
        + "\n  ".join(found))


def test_the_scan_covers_the_package():
    files = {p.relative_to(PACKAGE).as_posix() for p in _package_files()}
    assert {"autograd/engine.py", "_tensor.py", "ops/elementwise.py",
            "testing/finite_differences.py"} <= files
    assert not any(f.startswith(("bench/", "testing/registry/")) for f in files)
    assert "testing/oracle.py" not in files


VIOLATIONS = {
    "import torch.nn": "import torch.nn",
    "import torch.nn.functional as F": "import torch.nn.functional as F",
    "from torch import nn": "from torch import nn",
    "from torch.nn import functional": "from torch.nn import functional as F",
    "from torch.autograd import grad": "from torch.autograd import grad",
    "import torch.optim": "import torch.optim as optim",
    "from torch.utils.data import DataLoader": "from torch.utils.data import DataLoader",
    "from torch.utils import data": "from torch.utils import data",
    "torch.func": "import torch\ny = torch.func.grad(f)",
    "torch.nn.functional.gelu": "import torch\ny = torch.nn.functional.gelu(x)",
    "torch.softmax": "import torch\ny = torch.softmax(x, -1)",
    "torch.log_softmax via alias": "import torch as th\ny = th.log_softmax(x, -1)",
    "torch.logsumexp": "import torch\ny = torch.logsumexp(x, 0)",
    "torch.conv2d": "import torch\ny = torch.conv2d(x, w)",
    "torch.max_pool2d": "import torch\ny = torch.max_pool2d(x, 2)",
    "torch.batch_norm": "import torch\ny = torch.batch_norm(x, w, b, m, v, True, 0.1, 1e-5, 0)",
    "torch.layer_norm": "import torch\ny = torch.layer_norm(x, (4,))",
    "torch.dropout": "import torch\ny = torch.dropout(x, 0.5, True)",
    "torch.embedding": "import torch\ny = torch.embedding(w, i)",
    "torch.lstm": "import torch\ny = torch.lstm(x, hx, params, True, 1, 0.0, True, False, True)",
    "torch.gru_cell": "import torch\ny = torch.gru_cell(x, h, a, b)",
    "torch.rnn_tanh": "import torch\ny = torch.rnn_tanh(x, h, p, True, 1, 0.0, True, False, True)",
    "from torch import softmax": "from torch import softmax",
    "torch.Tensor.log_softmax": "import torch\ny = torch.Tensor.log_softmax(x, 1)",
    "getattr(torch, 'softmax')": "import torch\nf = getattr(torch, 'softmax')",
    "torch._C._nn.gelu": "import torch\ny = torch._C._nn.gelu(x)",
    "requires_grad=True": "import torch\nw = torch.zeros(3, requires_grad=True)",
    ".backward() in a Function": (
        "from handgrad.autograd import Function\n"
        "class F(Function):\n"
        "    @staticmethod\n"
        "    def backward(ctx, g):\n"
        "        ctx.out.backward(g)\n"),
    ".requires_grad_() in a Function": (
        "from handgrad import autograd\n"
        "class F(autograd.Function):\n"
        "    @staticmethod\n"
        "    def forward(ctx, x):\n"
        "        return x.detach().requires_grad_()\n"),
    ".softmax() in a Function": (
        "class Softmax(Function):\n"
        "    @staticmethod\n"
        "    def forward(ctx, x, dim):\n"
        "        return x.softmax(dim)\n"),
    "requires_grad = in a Function": (
        "class F(Function):\n"
        "    def forward(ctx, x):\n"
        "        x.requires_grad = True\n"),
}


@pytest.mark.parametrize("name", list(VIOLATIONS))
def test_the_scan_catches(name):
    assert scan(VIOLATIONS[name]), f"the scan missed: {VIOLATIONS[name]!r}"


ALLOWED = {
    "array ops": "import torch\ny = torch.exp(x) + torch.where(m, x, 0).amax(1) @ torch.cat(z)",
    "a mention in a docstring": '"""Works like torch.nn.Linear and torch.softmax."""',
    "a comment": "x = 1  # torch.nn.functional.gelu would do this",
    "torch.distributed": "import torch.distributed as dist\ndist.all_reduce(t)",
    "handgrad methods outside Functions": "loss = logits.log_softmax(-1).sum()\nloss.backward()",
    "handgrad requires_grad": "import handgrad\nw = handgrad.zeros(3, requires_grad=True)",
    "requires_grad=False": "import torch\nw = torch.zeros(3, requires_grad=False)",
    "a local named like a kernel": "import torch\nsoftmax = torch.exp(x)\nconv = softmax",
    "torch.Tensor.unfold is not torch.unfold": "y = x.data.unfold(0, 2, 1)",
}


@pytest.mark.parametrize("name", list(ALLOWED))
def test_the_scan_allows(name):
    assert not scan(ALLOWED[name]), scan(ALLOWED[name])


def test_importing_the_scalar_engine_never_imports_torch():
    code = "import sys, handgrad.scalar; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, \
        "handgrad.scalar must stand alone (ARCHITECTURE.md section 2)"
