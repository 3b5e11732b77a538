"""micrograd's moons demo with handgrad's scalar engine: 100% training accuracy.

MLP(2, [16, 16, 1]) (relu, linear output) on make_moons(100, noise=0.1), hinge loss
plus 1e-4 L2, 100 steps of full-batch SGD with the learning rate going from 1.0 to 0.1;
then a picture of the decision boundary.

    python examples/scalar_moons.py [--steps 100] [--out moons.png]
"""

import argparse
import random

from handgrad.scalar import MLP, Value, make_moons
from handgrad.scalar.train import plot_decision_boundary

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=100, help="training steps")
parser.add_argument("--seed", type=int, default=1337, help="seed of the data and weights")
parser.add_argument("--out", default="moons.png", help="decision-boundary plot (PNG)")
args = parser.parse_args()

xs, labels = make_moons(100, noise=0.1, random_state=args.seed)
ys = [2.0 * label - 1.0 for label in labels]  # 0/1 -> -1/+1
model = MLP(2, [16, 16, 1], rng=random.Random(args.seed))
print(model, f"{len(model.parameters())} parameters")


def loss_and_accuracy():
    scores = [model(x) for x in xs]
    hinge = [(1 - y * s).relu() for y, s in zip(ys, scores)]  # max-margin loss
    data_loss = Value.sum(hinge) * (1.0 / len(hinge))
    reg_loss = 1e-4 * Value.sum([p * p for p in model.parameters()])  # L2
    accuracy = sum((y > 0) == (s.data > 0) for y, s in zip(ys, scores)) / len(ys)
    return data_loss + reg_loss, accuracy


for step in range(args.steps):
    loss, accuracy = loss_and_accuracy()
    model.zero_grad()
    loss.backward()
    lr = 1.0 - 0.9 * step / args.steps
    for p in model.parameters():
        p.data -= lr * p.grad
    if step % 10 == 0 or step == args.steps - 1:
        print(f"step {step:3d}  loss {loss.data:.4f}  accuracy {accuracy:.0%}")

loss, accuracy = loss_and_accuracy()
print(f"after {args.steps} steps: loss {loss.data:.4f}, training accuracy {accuracy:.0%}")
print("decision boundary:", plot_decision_boundary(model, xs, ys, args.out))
