"""handgrad.scalar: a scalar autograd engine in pure Python, with pictures and a tiny net.

    from handgrad.scalar import Value, Neuron, Layer, MLP, draw_graph

`Value` (engine.py) is one number with a gradient and the op that made it; `backward()`
fills every gradient by the chain rule. `Neuron`, `Layer`, `MLP` (nn.py) build a small
network of Values. `draw_graph` (draw.py) pictures a computation graph. `make_moons`
(datasets.py) and the training examples (train.py) reproduce micrograd's demos.

Standard library only: importing this package never imports torch or numpy (the
decision-boundary plot imports matplotlib when it is called). For arrays, use the
tensor engine, `handgrad.tensor`.
"""

from handgrad.scalar.datasets import LECTURE_XS, LECTURE_YS, make_moons
from handgrad.scalar.draw import draw_graph, to_dot
from handgrad.scalar.engine import Value
from handgrad.scalar.nn import MLP, Layer, Module, Neuron

__all__ = ["Value", "Module", "Neuron", "Layer", "MLP", "draw_graph", "to_dot", "make_moons",
           "LECTURE_XS", "LECTURE_YS"]
