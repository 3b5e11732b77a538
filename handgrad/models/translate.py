"""The `handgrad translate CKPT` command: English -> French with a trained translator.

    handgrad translate runs/translator-tatoeba-5k/checkpoint.safetensors "I'm tired."
    handgrad translate CKPT "Go away." "Call Tom." --beam 4
    handgrad translate CKPT --file sentences.txt > french.txt     # one sentence a line

The checkpoint (of `handgrad train translator`) holds the weights, the config and both
tokenizers. Translations go to stdout, one line per input sentence, in order (a blank
input line gives a blank output line). Greedy by default; `--beam N` runs beam search
with the length penalty `--length-penalty`. English words outside the model's
vocabulary are translated as <unk> and listed on stderr, sentence by sentence, never
dropped silently. Decoding uses the KV cache unless `--no-cache` (same output, slower).

Left out: other language pairs, sampling, interactive use.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from handgrad.models.options import add_common_arguments, resolve_device, set_threads

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT",
                        help="a checkpoint.safetensors written by `handgrad train translator`")
    parser.add_argument("sentences", nargs="*", metavar="SENTENCE",
                        help="English sentences to translate (or --file)")
    parser.add_argument("--file", metavar="PATH",
                        help="a UTF-8 text file of English sentences, one per line ('-': "
                             "stdin); translations are printed one per line")
    parser.add_argument("--beam", type=int, default=1, metavar="N",
                        help="beam size (default 1: greedy)")
    parser.add_argument("--length-penalty", type=float, default=None, metavar="ALPHA",
                        help="beam search: alpha of ((5 + length) / 6) ** alpha (default: "
                             "the checkpoint's config, 0.6 in the reference recipe)")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="sentences translated together (default 64)")
    parser.add_argument("--no-cache", action="store_true",
                        help="run the whole decoder prefix at every step instead of the KV "
                             "cache (the same output, slower)")
    add_common_arguments(parser, device="where to run the model (default cpu)", threads=1)


def _read_sentences(args) -> list[str]:
    if args.file is not None and args.sentences:
        raise ValueError("give sentences or --file, not both")
    if args.file is None:
        if not args.sentences:
            raise ValueError("nothing to translate: give one or more sentences, or --file PATH")
        return list(args.sentences)
    if args.file == "-":
        return sys.stdin.read().splitlines()
    path = Path(args.file)
    if not path.is_file():
        raise ValueError(f"--file {args.file}: no such file")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"--file {args.file}: not UTF-8 text ({error})") from None


def run(args: argparse.Namespace) -> int:
    from handgrad.models.translator import load_translator, translate
    from handgrad.train import CheckpointError

    command = "handgrad translate"
    try:
        set_threads(args.threads)
        device = resolve_device(args.device)
        if args.beam < 1:
            raise ValueError(f"--beam must be >= 1, got {args.beam}")
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
        sentences = _read_sentences(args)
        model, source, target, config = load_translator(args.checkpoint, device=device)
    except (ValueError, FileNotFoundError, CheckpointError) as error:
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    penalty = config.length_penalty if args.length_penalty is None else args.length_penalty
    where = "line" if args.file is not None else "sentence"
    longest = model.config.max_positions
    too_long = set()
    for number, sentence in enumerate(sentences, start=1):
        unknown = source.unknown_words(sentence)
        if unknown:
            print(f"{command}: {where} {number}: not in the English vocabulary, translated "
                  f"as <unk>: {', '.join(unknown)}", file=sys.stderr)
        tokens = len(source.encode(sentence, add_bos=False))
        if tokens > longest:  # the rest is still translated; this one gets an empty line
            too_long.add(number - 1)
            print(f"{command}: {where} {number}: {tokens} tokens, but the model reads at most "
                  f"{longest} (max_positions); left untranslated (an empty line): split it",
                  file=sys.stderr)
    present = [(i, s) for i, s in enumerate(sentences) if s.strip() and i not in too_long]
    try:
        french = translate(model, source, target, [s for _, s in present], beam=args.beam,
                           length_penalty=penalty, batch_size=args.batch_size, device=device,
                           use_cache=not args.no_cache) if present else []
    except ValueError as error:  # e.g. a sentence longer than the model's positions
        print(f"{command}: {error}", file=sys.stderr)
        return 2
    lines = [""] * len(sentences)
    for (i, _), translation in zip(present, french):
        lines[i] = translation
    for line in lines:
        print(line)
    return 1 if too_long else 0
