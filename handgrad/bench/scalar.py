"""`handgrad bench scalar`: micrograd's moons training step, handgrad's Value vs micrograd's.

One step is micrograd's demo: forward over 100 points through MLP(2, [16, 16, 1]),
hinge loss + 1e-4 L2, zero_grad, backward, SGD update. Both engines start from the same
weights and data (micrograd's weights are copied into handgrad's model, and the first
step's loss and every gradient are checked to agree), run in the same process,
alternating, after warm-up; the figure is the median over rounds of
micrograd_time / handgrad_time (above 1.0: handgrad is faster). Two handgrad variants:

* `handgrad`: handgrad's own MLP and `Value.sum` for the sums (one node per sum), the
  way handgrad is meant to be used;
* `node-for-node`: micrograd's own `nn.py` and demo code driving handgrad Values (its
  weights swapped for handgrad's), so both engines build the very same graph, node for
  node; this isolates the per-node cost of the engine.

A garbage collection runs (untimed) before every timed step: micrograd's nodes form
reference cycles (each node's backward closure refers to the node), so its graphs are
freed only by the cycle collector, and left alone they slow down whichever engine runs
next. Needs `micrograd==0.1.0` (`pip install -e '.[bench]'`); imports no torch.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import time

from handgrad.scalar import MLP, Value, make_moons

ALPHA = 1e-4  # L2 weight of the demo
SCHEDULE = 100  # the learning rate goes from 1.0 to 0.1 over this many steps, then repeats


def _import_micrograd():
    try:
        from micrograd import engine, nn
    except ImportError:
        message = ("handgrad bench scalar: micrograd is not installed; it is the baseline this "
                   "benchmark races against. Install it with `pip install -e '.[bench]'` "
                   "(or `pip install micrograd==0.1.0`).")
        raise SystemExit(message) from None
    return engine.Value, nn.MLP


def _learning_rate(k: int) -> float:
    return 1.0 - 0.9 * (k % SCHEDULE) / SCHEDULE


def micrograd_step(model, xs, ys, k: int, value_cls, total_sum=sum) -> float:
    """micrograd's demo step, verbatim (its `loss()` and update loop). With value_cls =
    handgrad's Value and a micrograd model holding handgrad weights, it drives handgrad."""
    inputs = [list(map(value_cls, xrow)) for xrow in xs]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(ys, scores)]
    data_loss = total_sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * total_sum(p * p for p in model.parameters())
    total_loss = data_loss + reg_loss
    model.zero_grad()
    total_loss.backward()
    learning_rate = _learning_rate(k)
    for p in model.parameters():
        p.data -= learning_rate * p.grad
    return total_loss.data


def handgrad_step(model: MLP, xs, ys, k: int) -> float:
    """The same step written for handgrad: its MLP, and Value.sum for the two sums."""
    inputs = [list(map(Value, xrow)) for xrow in xs]
    scores = list(map(model, inputs))
    losses = [(1 + -yi * scorei).relu() for yi, scorei in zip(ys, scores)]
    data_loss = Value.sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * Value.sum([p * p for p in model.parameters()])
    total_loss = data_loss + reg_loss
    model.zero_grad()
    total_loss.backward()
    learning_rate = _learning_rate(k)
    for p in model.parameters():
        p.data -= learning_rate * p.grad
    return total_loss.data


def build(seed: int, points: int = 100):
    """Data and three models with the same weights: micrograd, handgrad, node-for-node."""
    micrograd_value, micrograd_mlp = _import_micrograd()
    xs, labels = make_moons(points, noise=0.1, random_state=seed)
    ys = [2.0 * label - 1.0 for label in labels]
    random.seed(seed)
    reference = micrograd_mlp(2, [16, 16, 1])
    weights = [p.data for p in reference.parameters()]
    ours = MLP(2, [16, 16, 1])
    for p, w in zip(ours.parameters(), weights, strict=True):
        p.data = w
    random.seed(seed)
    mirror = micrograd_mlp(2, [16, 16, 1])  # micrograd's nn.py code, handgrad Values inside
    for layer in mirror.layers:
        for neuron in layer.neurons:
            neuron.w = [Value(w.data) for w in neuron.w]
            neuron.b = Value(neuron.b.data)
    return micrograd_value, xs, ys, reference, ours, mirror


def check_same_computation(seed: int, points: int = 100) -> float:
    """One step of each engine from the same start: the largest difference between the
    losses and the gradients of corresponding parameters (they must agree)."""
    micrograd_value, xs, ys, reference, ours, mirror = build(seed, points)
    losses = [micrograd_step(reference, xs, ys, 0, micrograd_value),
              handgrad_step(ours, xs, ys, 0),
              micrograd_step(mirror, xs, ys, 0, Value)]
    grads = [[p.grad for p in m.parameters()] for m in (reference, ours, mirror)]
    worst = max(abs(a - b) for a, b in zip(losses, losses[1:]))
    for other in grads[1:]:
        worst = max(worst, *(abs(a - b) for a, b in zip(grads[0], other, strict=True)))
    if worst > 1e-9:
        raise AssertionError(f"bench scalar: the engines disagree by {worst:.3g}; the "
                             "comparison would not be of the same computation")
    return worst


def race(seed: int, rounds: int, warmup: int, points: int = 100) -> dict:
    """Time the three steps alternately; medians (seconds per step) and median ratios."""
    micrograd_value, xs, ys, reference, ours, mirror = build(seed, points)
    runners = {
        "micrograd": lambda k: micrograd_step(reference, xs, ys, k, micrograd_value),
        "handgrad": lambda k: handgrad_step(ours, xs, ys, k),
        "node_for_node": lambda k: micrograd_step(mirror, xs, ys, k, Value),
    }
    for k in range(warmup):
        for step in runners.values():
            step(k)
    times = {name: [] for name in runners}
    names = list(runners)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]  # neither always runs first
        for name in order:
            gc.collect()
            start = time.perf_counter()
            runners[name](warmup + r)
            times[name].append(time.perf_counter() - start)
    result = {f"{name}_s": statistics.median(t) for name, t in times.items()}
    for name in ("handgrad", "node_for_node"):
        result[f"ratio_{name}"] = statistics.median(
            m / h for m, h in zip(times["micrograd"], times[name]))
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=15,
                        help="timed steps per engine (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    from handgrad.models.options import add_common_arguments

    add_common_arguments(parser, seed=1337, seed_help="data and weights seed")
    parser.add_argument("--points", type=int, default=100,
                        help="moons points per step (default 100, as in micrograd's demo)")
    parser.add_argument("--quick", action="store_true",
                        help="CI mode: 20 points, 2 rounds after 1 warm-up step; checks that "
                             "it runs, not how fast")
    add_common_arguments(parser, json="also write the figures as JSON here")


def run(args: argparse.Namespace) -> int:
    rounds, warmup, points = ((2, 1, 20) if args.quick
                              else (args.rounds, args.warmup, args.points))
    difference = check_same_computation(args.seed, points)
    result = race(args.seed, rounds, warmup, points)
    result.update(rounds=rounds, warmup=warmup, points=points, seed=args.seed,
                  max_difference=difference, quick=args.quick,
                  machine={"python": platform.python_version(),
                           "implementation": platform.python_implementation(),
                           "cpu": platform.processor() or platform.machine(),
                           "system": platform.system()})
    print(f"moons step ({points} points, MLP(2, [16, 16, 1]), forward + backward + update), "
          f"median of {rounds} rounds; engines agree to {difference:.1g}")
    print(f"  micrograd 0.1.0           {result['micrograd_s'] * 1e3:8.1f} ms")
    print(f"  handgrad                  {result['handgrad_s'] * 1e3:8.1f} ms"
          f"   {result['ratio_handgrad']:.2f}x faster")
    print(f"  handgrad, node for node   {result['node_for_node_s'] * 1e3:8.1f} ms"
          f"   {result['ratio_node_for_node']:.2f}x faster")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0
