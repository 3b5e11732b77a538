"""The lecture that made micrograd famous, with handgrad's scalar engine.

A 3-4-4-1 net with tanh everywhere learns four 3-D points with targets 1, -1, -1, 1 by
gradient descent on the sum of squared errors, written out step by step: forward,
zero_grad, backward, update. It stops once the loss is below 1e-4 (66 steps with the
default seed; half of all seeds need 11 or fewer).

    python examples/scalar_lecture.py [--steps 100] [--seed 1337]
"""

import argparse
import random

from handgrad.scalar import LECTURE_XS, LECTURE_YS, MLP, Value

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=100, help="most steps to take")
parser.add_argument("--seed", type=int, default=1337, help="seed of the initial weights")
parser.add_argument("--lr", type=float, default=0.07, help="learning rate")
parser.add_argument("--momentum", type=float, default=0.95, help="0 for plain SGD")
args = parser.parse_args()

model = MLP(3, [4, 4, 1], nonlin="tanh", output_nonlin="tanh", rng=random.Random(args.seed))
print(model)
params = model.parameters()
velocity = [0.0] * len(params)

for step in range(args.steps):
    predictions = [model(x) for x in LECTURE_XS]
    loss = Value.sum([(p - y) ** 2 for p, y in zip(predictions, LECTURE_YS)])
    print(f"step {step:3d}  loss {loss.data:.6f}")
    if loss.data < 1e-4:
        break
    model.zero_grad()  # gradients accumulate across backward() calls, as in PyTorch
    loss.backward()
    for i, p in enumerate(params):  # SGD with momentum
        velocity[i] = args.momentum * velocity[i] + p.grad
        p.data -= args.lr * velocity[i]

print("predictions:", [round(p.data, 4) for p in predictions], "targets:", LECTURE_YS)
