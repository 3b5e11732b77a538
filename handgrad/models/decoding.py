"""Decoding for every language model of handgrad.models: how the next token is chosen,
and streaming generation (a KV cache for the GPT, the carried state for the char-RNN).

    for char in generate(model, vocabulary, "ROMEO:", 500, temperature=0.8, top_p=0.9):
        print(char, end="")
    model, vocabulary, config, kind = load_language_model("runs/gpt/checkpoint.safetensors")
    sampling_speed(model, vocabulary, "ROMEO:", 500)   # tokens/s with and without the cache

Choosing the next token from the logits z (one row of V scores), in this order:
greedy takes argmax z; otherwise z / temperature, then `top_k` keeps the k largest
scores (ties at the k-th kept too), then `top_p` keeps the nucleus: the most likely
tokens, in order of probability, while the probability mass before each one is below p
(so the smallest set whose mass reaches p, and always the likeliest token); the token is
drawn from the softmax of what is left, with the caller's torch.Generator, so the same
seed gives the same text.

GPT decoding (`GPTStepper`): the prompt is fed once (prefill) and fills the KV cache;
each new token then runs the model on that one position, attending to the cached keys
and values (B, heads, T, hd) of every layer, which grow by one position per token: O(T)
work per token instead of the O(T^2) of running the whole context again. The model has
no position past block_size, so when the context would outgrow it, the window moves to
the last `keep` tokens (default block_size: nanoGPT's sliding window, the same text as
running the model on the last block_size tokens at every step) and the cache is rebuilt
from them by one prefill. With keep = block_size every token past the first block costs
a prefill; a smaller keep (say block_size // 2) rebuilds once every block_size - keep
tokens, at the price of a shorter context right after each rebuild. `use_cache=False`
runs the same windows without a cache: the reference the tests compare against (same
tokens, same logits).

Left out: beam search (the translator's decoder has its own), batched generation of
several prompts, and speculative decoding.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import torch

from handgrad._tensor import Tensor
from handgrad.autograd import no_grad

__all__ = ["filter_scores", "choose_next", "RecurrentStepper", "GPTStepper", "stepper_for",
           "generate", "load_language_model", "sampling_speed", "check_sampling_options"]


# ---------------------------------------------------------------------------- the next token
def check_sampling_options(temperature: float = 1.0, top_k: int | None = None,
                           top_p: float | None = None, who: str = "generate") -> None:
    """ValueError for a temperature <= 0, top_k < 1 or top_p outside (0, 1]."""
    if not temperature > 0:
        raise ValueError(f"{who}: temperature must be positive, got {temperature} (use "
                         f"greedy decoding for the most likely token)")
    if top_k is not None and top_k < 1:
        raise ValueError(f"{who}: top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"{who}: top_p must be in (0, 1], got {top_p}")


def filter_scores(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """The scores (float64) of one row of logits (V,) after temperature, top-k and top-p:
    logits / temperature, with -inf for every token left out."""
    scores = logits.double() / temperature  # (V,)
    if top_k is not None and top_k < scores.shape[0]:
        kth = torch.topk(scores, top_k).values[-1]
        scores = torch.where(scores < kth, torch.full_like(scores, -math.inf), scores)
    if top_p is not None and top_p < 1:
        probs = torch.exp(scores - scores.max())
        probs = probs / probs.sum()
        ordered, order = torch.sort(probs, descending=True)  # (V,)
        before = torch.cumsum(ordered, 0) - ordered  # mass of the likelier tokens
        dropped = order[before >= top_p]
        scores = scores.index_fill(0, dropped, -math.inf)
    return scores


def choose_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, greedy: bool = False,
                generator: torch.Generator | None = None) -> int:
    """The next token's id from one row of logits (V,): argmax when greedy, else a draw
    from softmax(filter_scores(...)) with `generator`."""
    if greedy:
        return int(torch.argmax(logits))
    scores = filter_scores(logits, temperature, top_k, top_p)
    probs = torch.exp(scores - scores.max())
    probs = probs / probs.sum()
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


# ---------------------------------------------------------------------------- steppers
class RecurrentStepper:
    """The char-RNN's decoder: the prompt once, then one character at a time with the
    recurrent state carried along. start(ids) and step(id) return the next logits (V,)."""

    def __init__(self, model):
        self.model, self.state = model, None

    def start(self, ids: torch.Tensor) -> torch.Tensor:
        logits, self.state = self.model(Tensor(ids.unsqueeze(0)))  # (1, P, V)
        return logits.data[0, -1]

    def step(self, token: int) -> torch.Tensor:
        device = self.model_device
        logits, self.state = self.model(Tensor(torch.tensor([[token]], device=device)),
                                        self.state)  # (1, 1, V)
        return logits.data[0, -1]

    @property
    def model_device(self):
        return next(iter(self.model.parameters())).data.device


class GPTStepper:
    """The GPT's decoder over a moving window of the context (module docstring).

    start(ids) and step(id) return the logits (V,) of the next token. With use_cache the
    window's keys and values stay in a KVCache and a step runs the model on one position;
    without, each step runs it on the whole window. `rebuilds` counts the prefills."""

    def __init__(self, model, use_cache: bool = True, keep: int | None = None):
        block = model.block_size
        keep = block if keep is None else keep
        if not 1 <= keep <= block:
            raise ValueError(f"GPTStepper: keep must be in [1, block_size = {block}], got "
                             f"{keep}")
        self.model, self.use_cache, self.keep = model, use_cache, keep
        self.cache = model.new_cache() if use_cache else None
        self.context: list[int] = []
        self.window = 0  # index of the window's first token in the context
        self.rebuilds = 0

    def _device(self):
        return self.model.transformer.wte.weight.data.device

    def _run(self, ids: list[int]) -> torch.Tensor:
        idx = Tensor(torch.tensor([ids], dtype=torch.int64, device=self._device()))  # (1, t)
        logits, _ = self.model(idx, cache=self.cache)  # (1, t, V)
        return logits.data[0, -1]

    def _prefill(self) -> torch.Tensor:
        self.rebuilds += 1
        if self.cache is not None:
            self.cache.reset()
        return self._run(self.context[self.window:])

    def start(self, ids: torch.Tensor) -> torch.Tensor:
        self.context = [int(i) for i in ids.tolist()]
        self.window = max(0, len(self.context) - self.model.block_size)
        if self.window:
            self.window = len(self.context) - self.keep
        return self._prefill()

    def step(self, token: int) -> torch.Tensor:
        self.context.append(int(token))
        if len(self.context) - self.window > self.model.block_size:
            self.window = len(self.context) - self.keep  # move the window, rebuild the cache
            return self._prefill()
        if self.cache is None:
            return self._run(self.context[self.window:])
        return self._run([int(token)])


def stepper_for(model, use_cache: bool = True, keep: int | None = None):
    """The decoder of `model`: GPTStepper for a GPT, RecurrentStepper for a char-RNN."""
    from handgrad.models.gpt import GPT

    if isinstance(model, GPT):
        return GPTStepper(model, use_cache, keep)
    return RecurrentStepper(model)


# ---------------------------------------------------------------------------- generation
def generate(model, vocabulary, prompt: str, length: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, greedy: bool = False,
             generator: torch.Generator | None = None, device=None, *,
             use_cache: bool = True, keep: int | None = None,
             logits_out: list | None = None) -> Iterator[str]:
    """Yield `length` characters after `prompt`, one at a time (the prompt itself is not
    yielded), for any language model of handgrad.models (GPT or char-RNN). A ValueError
    lists the prompt's characters outside the vocabulary. `logits_out`, a list, receives
    the logits (V,) each character was chosen from (the tests compare them)."""
    if not prompt:
        raise ValueError("generate: the prompt is empty; give at least one character")
    check_sampling_options(temperature, top_k, top_p)
    ids = vocabulary.encode(prompt, what=f"the prompt {prompt!r}")
    if device is not None:
        ids = ids.to(device)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            stepper = stepper_for(model, use_cache, keep)
            logits = stepper.start(ids)
            for index in range(length):
                if logits_out is not None:
                    logits_out.append(logits.clone())
                token = choose_next(logits, temperature, top_k, top_p, greedy, generator)
                yield vocabulary.chars[token]
                if index + 1 < length:
                    logits = stepper.step(token)
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------------- checkpoints
def load_language_model(path, device=None):
    """(model in eval mode, vocabulary, config, kind) from a checkpoint of `handgrad train
    gpt` (kind "gpt") or `handgrad train char-rnn` ("char-rnn"): the checkpoint's "kind"
    says which (checkpoints written before it was recorded are char-RNN ones)."""
    from handgrad.train import CheckpointError, load_state

    state = load_state(path)
    kind = state.get("kind", "char-rnn") if isinstance(state, dict) else None
    if kind == "gpt":
        from handgrad.models.gpt import load_trained
    elif kind == "char-rnn":
        from handgrad.models.char_rnn import load_trained
    else:
        raise CheckpointError(f"{path}: a checkpoint of kind {kind!r}, not of a language "
                              f"model (gpt or char-rnn)")
    model, vocabulary, config = load_trained(path, device, state=state)
    return model, vocabulary, config, kind


# ---------------------------------------------------------------------------- speed
def sampling_speed(model, vocabulary, prompt: str = "\n", length: int = 500, seed: int = 0,
                   temperature: float = 0.8, top_k: int | None = None,
                   top_p: float | None = None, keep: int | None = None,
                   device=None) -> dict:
    """Tokens per second generating `length` characters after `prompt` with the KV cache
    and without it (same seed; a GPT; after a warm-up of 8 characters each), and whether
    the two texts are the same."""
    results = {"length": length, "keep": keep or getattr(model, "block_size", None)}
    texts = {}
    for use_cache in (True, False):  # warm-up: the first calls allocate and fill caches
        for _ in generate(model, vocabulary, prompt, 8, use_cache=use_cache, device=device):
            pass
    for name, use_cache in (("cached", True), ("uncached", False)):
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        texts[name] = "".join(generate(model, vocabulary, prompt, length, temperature, top_k,
                                       top_p, generator=generator, device=device,
                                       use_cache=use_cache, keep=keep))
        seconds = time.perf_counter() - start
        results[f"{name}_seconds"] = seconds
        results[f"{name}_tokens_per_second"] = length / seconds
    results["speedup"] = results["uncached_seconds"] / results["cached_seconds"]
    results["same_text"] = texts["cached"] == texts["uncached"]
    results["text"] = texts["cached"]
    return results
