"""The `handgrad evaluate CKPT --text FILE` command: how well a trained character-level
model (a GPT or a char-RNN) predicts a text.

    handgrad evaluate runs/char-rnn-lstm/checkpoint.safetensors --text play.txt

Prints (and with --json writes) nats per character (the mean of -ln p(next character)
given everything before it), bits per character (nats / ln 2) and perplexity (e^nats).
Characters outside the model's vocabulary cannot be scored (the model gives them
probability 0): they are counted and listed, and the text is scored with them taken
out; the output always says how many there were.

The char-RNN reads the text as --batch-size streams with its state carried, so each
character is scored given everything before it in its stream; the GPT sees at most its
block_size characters: it scores the text in windows of block_size (gpt.window_nats),
one starting every --stride characters (default: the stride of its training run's
validation, block_size unless --eval-stride said otherwise), so its figure is the one
its training run reported on the same text.

Left out: texts of other models (word-level).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from handgrad.models.options import add_common_arguments, resolve_device, set_threads

__all__ = ["add_arguments", "run", "evaluate_text"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT",
                        help="a checkpoint.safetensors written by `handgrad train gpt` or "
                             "`handgrad train char-rnn`")
    parser.add_argument("--text", required=True, metavar="FILE",
                        help="the UTF-8 text file to score")
    parser.add_argument("--batch-size", type=int, default=32, metavar="B",
                        help="parallel streams (char-RNN) or windows per batch (GPT) "
                             "(default 32; the figure does not depend on it beyond rounding)")
    parser.add_argument("--seq-len", type=int, default=256, metavar="T",
                        help="char-RNN: characters per chunk (default 256)")
    parser.add_argument("--stride", type=int, default=None, metavar="S",
                        help="GPT: a window of block_size characters starts every S "
                             "characters (default: the training run's validation stride)")
    add_common_arguments(parser, device="where to run the model (default cpu)", threads=1,
                         json="also write the figures to this JSON file")


def evaluate_text(model, vocabulary, text: str, batch_size: int = 32, seq_len: int = 256,
                  device=None, stride: int | None = None) -> dict:
    """The figures of `text`: nats_per_char, bits_per_char, perplexity, chars (scored),
    and unknown ({character: count}) / unknown_count for the characters taken out.
    A GPT scores windows every `stride` characters (default block_size); a char-RNN
    reads `batch_size` streams in chunks of `seq_len`."""
    from handgrad.models.char_rnn import figures, stream_nats
    from handgrad.models.gpt import GPT, window_nats

    unknown = vocabulary.unknown(text)
    known = "".join(c for c in text if c in vocabulary.stoi) if unknown else text
    ids = vocabulary.encode(known)
    if isinstance(model, GPT):
        total, count = window_nats(model, ids, stride=stride, batch_size=batch_size,
                                   device=device)
    else:
        total, count = stream_nats(model, ids, batch_size, seq_len, device)
    result = figures(total, count)
    result.update(unknown=unknown, unknown_count=sum(unknown.values()),
                  text_chars=len(text))
    return result


def run(args: argparse.Namespace) -> int:
    from handgrad.data.datasets._files import DataFileError
    from handgrad.data.datasets.text import _read_text
    from handgrad.models.decoding import load_language_model

    command = "handgrad evaluate"
    try:
        set_threads(args.threads)
        device = resolve_device(args.device)
        path = Path(args.text).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--text {args.text}: no such file")
        text = _read_text(path)
        model, vocabulary, config, kind = load_language_model(args.checkpoint, device)
        stride = args.stride
        if kind == "gpt" and stride is None:
            stride = config.eval_stride or None
        if stride is not None and not 1 <= stride <= getattr(model, "block_size", stride):
            raise ValueError(f"--stride must be in [1, the block size "
                             f"{getattr(model, 'block_size', '?')}], got {stride}")
        if len(text) < 2:
            raise ValueError(f"--text {args.text}: {len(text)} characters; at least 2 are "
                             f"needed to score one")
        result = evaluate_text(model, vocabulary, text, args.batch_size, args.seq_len, device,
                               stride)
    except (ValueError, FileNotFoundError, DataFileError) as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    if result["unknown_count"]:
        listed = ", ".join(f"{c!r} x{n}" for c, n in sorted(result["unknown"].items()))
        print(f"{result['unknown_count']} of {result['text_chars']:,} characters are outside "
              f"the model's vocabulary of {len(vocabulary)} and were taken out before scoring "
              f"(the model gives them probability 0): {listed}")
    else:
        print(f"every character of the text is in the model's vocabulary of {len(vocabulary)}")
    print(f"{path.name}: {result['nats_per_char']:.4f} nats/char, "
          f"{result['bits_per_char']:.4f} bits/char, perplexity {result['perplexity']:.3f} "
          f"over {result['chars']:,} scored characters")
    if args.json:
        from handgrad.train.checkpoint import write_json_atomic

        write_json_atomic(args.json, {"checkpoint": args.checkpoint, "text": str(path),
                                      **result})
    return 0
