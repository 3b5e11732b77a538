"""Checkpoints: tensors in safetensors, everything else in JSON, one file, written
atomically, every byte under a checksum.

File format -- one ordinary ``.safetensors`` file:

- the tensors, by name, as safetensors stores them (any tool that reads safetensors
  reads the weights);
- the JSON metadata (epoch, step, config, optimizer hyper-parameters, RNG states, ...)
  as a string in the safetensors header's ``__metadata__`` under ``handgrad.meta``, next
  to ``handgrad.checkpoint: "2"`` (the format version), ``handgrad.order`` (the
  tensors' names in the order they were given: safetensors sorts them, and a
  state_dict's order is worth keeping) and ``handgrad.sha256``: a sha256 of each tensor
  (its name, dtype, shape and bytes) and one of the other metadata entries as canonical
  JSON. Loading checks them all before it returns anything, and names each tensor or the
  metadata when one fails; a bit flipped in the header's framing makes it unreadable,
  which is refused too. Format "1" files (before checksums) still load, unchecked.

One file rather than ``.safetensors`` + ``.json`` side by side, because one file can be
replaced atomically: a pair cannot, and a crash between the two renames would leave
weights from one save with metadata from another.

Writing is atomic (``_write_atomic``, also behind ``write_json_atomic`` for JSON
outputs): handgrad writes the safetensors bytes itself into a temporary file in the same
directory (created as ``open()`` creates files: mode 0666 less the umask), which is
fsync'ed, renamed over the target with ``os.replace`` (atomic on POSIX), and then the
directory is fsync'ed so the rename itself survives a power cut. A process killed at
any moment leaves either the previous checkpoint or the new one, never a torn file, and
the next save there deletes the dead save's temporary file. Loading reads safetensors
and JSON only: nothing is ever unpickled, and a pickle file is refused as one.

Nested state (a model's and an optimizer's ``state_dict``, a scheduler, RNG states) is
turned into flat tensors plus a JSON skeleton by ``flatten_state`` and rebuilt by
``unflatten_state``; ``save_state`` / ``load_state`` do both around a checkpoint.
``get_rng_state`` / ``set_rng_state`` capture and restore Python's ``random``, numpy's
global generator, torch's CPU generator and every CUDA generator; ``check_rng_state``
says whether a state could be restored without touching any of them.

Left out: sharded checkpoints (one file per save), compression, and checking what the
Learner does with the state (``Learner.check_checkpoint_state`` does that).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import secrets
import struct
import sys
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from safetensors import safe_open

FORMAT_KEY = "handgrad.checkpoint"
FORMAT_VERSION = "2"  # 2: with checksums; 1 (no checksums) is still read
READABLE_VERSIONS = ("1", FORMAT_VERSION)
META_KEY = "handgrad.meta"
ORDER_KEY = "handgrad.order"  # the tensors' names in the caller's order (safetensors sorts)
CHECKSUM_KEY = "handgrad.sha256"  # {"metadata": hex, "tensors": {name: hex}}


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or holds something unexpected."""


# ---------------------------------------------------------------- tensors in, tensors out

def _raw(value) -> torch.Tensor | None:
    """The torch tensor of a handgrad Tensor or torch tensor; None for anything else."""
    from handgrad._tensor import to_torch

    raw = to_torch(value)
    return raw if isinstance(raw, torch.Tensor) else None


def _wrap(t: torch.Tensor):
    from handgrad._tensor import Tensor

    return Tensor(t)


def _prepare_tensors(tensors: Mapping) -> dict[str, torch.Tensor]:
    """CPU, contiguous, detached copies-where-needed that safetensors accepts."""
    prepared, storages = {}, set()
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save_checkpoint: tensor names must be strings, got {name!r}")
        t = _raw(value)
        if t is None:
            raise TypeError(f"save_checkpoint: tensors[{name!r}] is a {type(value).__name__}, "
                            f"not a Tensor; put other values in meta")
        t = t.detach().to("cpu").resolve_conj().resolve_neg().contiguous()
        storage = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if storage in storages and t.numel() > 0:
            t = t.clone()  # tied weights: safetensors refuses shared memory; saved twice
        storages.add(storage)
        prepared[name] = t
    return prepared


def _check_json(value, path: str = "meta") -> None:
    """Raise a TypeError naming the first value JSON cannot hold."""
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"save_checkpoint: {path} has a non-string key {key!r}; JSON "
                                f"keys are strings (flatten_state keeps other keys)")
            _check_json(item, f"{path}[{key!r}]")
        return
    hint = " (tensors go in `tensors`, or use save_state)" if _raw(value) is not None else ""
    raise TypeError(f"save_checkpoint: {path} is a {type(value).__name__}, which JSON cannot "
                    f"hold{hint}")


# ---------------------------------------------------------------- atomic writes

def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. a platform that cannot open directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


# safetensors' own writer (used by handgrad before it wrote the file itself) names its
# temporary file `.tmp` + 6 letters or digits, in the target's directory.
_LEGACY_TEMPORARY = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def _is_dead_save(candidate: Path, path: Path) -> bool:
    """Whether `candidate` is a temporary file that a killed save left behind: one of
    ours for `path` whose process is gone, or one of safetensors' own (older handgrad)
    whose header says it holds a handgrad checkpoint."""
    name = candidate.name
    if name.startswith(f".{path.name}.tmp-"):
        try:
            os.kill(int(name.rsplit("-", 2)[-2]), 0)
        except ProcessLookupError:
            return True
        except (ValueError, IndexError, OSError):
            return False
        return False  # its process is alive: a save in progress
    if not _LEGACY_TEMPORARY.fullmatch(name):
        return False
    try:
        with open(candidate, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            return b'"' + FORMAT_KEY.encode() + b'"' in f.read(min(length, 2**24))
    except (OSError, struct.error):
        return False


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files that killed saves of ``path`` left behind (their process is
    gone); a save in progress in a live process is left alone."""
    for candidate in path.parent.glob(".*"):
        if candidate.is_file() and _is_dead_save(candidate, path):
            candidate.unlink(missing_ok=True)


def _write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a new temporary file next to ``path``, flush and fsync it,
    rename it over ``path`` and fsync the directory; on any error the temporary file is
    removed and ``path`` is left as it was. The file is created as ``open()`` creates
    one (mode 0666 less the umask), like the run's other outputs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the data are on disk before the rename publishes them
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    _remove_stale_temporaries(path)
    return path


def write_json_atomic(path: str | os.PathLike, value, *, indent: int | None = 2) -> Path:
    """Write ``value`` as JSON (``json.dumps(value, indent=indent)`` and a newline) to
    ``path`` atomically: a temporary file in the same folder, written, flushed, fsync'ed,
    renamed over ``path``, then the folder fsync'ed. Readers see the old file or the new
    one, never half of one, even after a crash or a power cut. Returns the path."""
    text = json.dumps(value, indent=indent) + "\n"  # fails before any file is touched
    return _write_atomic(Path(path), lambda file: file.write(text.encode("utf-8")))


# ---------------------------------------------------------------- the file itself

# safetensors' names of dtypes (its format specification); torch dtypes this torch lacks
# are skipped.
_DTYPE_NAMES = {getattr(torch, attribute): name for attribute, name in (
    ("float64", "F64"), ("float32", "F32"), ("float16", "F16"), ("bfloat16", "BF16"),
    ("int64", "I64"), ("int32", "I32"), ("int16", "I16"), ("int8", "I8"), ("uint8", "U8"),
    ("bool", "BOOL"), ("uint16", "U16"), ("uint32", "U32"), ("uint64", "U64"),
    ("complex64", "C64"), ("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2"),
) if hasattr(torch, attribute)}


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    """The bytes of a contiguous CPU tensor, without a copy (little-endian machines)."""
    return memoryview(t.reshape(-1).view(torch.uint8).numpy())


def _tensor_digest(name: str, t: torch.Tensor) -> str:
    """sha256 of a tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
    digest.update(_tensor_bytes(t))
    return digest.hexdigest()


def _tensor_digests(tensors: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """``_tensor_digest`` of each tensor, by name. (Hashing on several threads gained
    nothing measurable on the 2-core machine of docs/benchmarks.md, so it is serial.)"""
    return {name: _tensor_digest(name, t) for name, t in tensors.items()}


def _metadata_digest(metadata: Mapping[str, str]) -> str:
    """sha256 of the header's metadata (every entry but the checksums), as canonical JSON."""
    canonical = {k: v for k, v in metadata.items() if k != CHECKSUM_KEY}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _write_safetensors(file: BinaryIO, tensors: Mapping[str, torch.Tensor],
                       metadata: Mapping[str, str]) -> None:
    """Write an ordinary safetensors file (8-byte little-endian header length, the JSON
    header padded with spaces to 8 bytes, then each tensor's bytes) to ``file``."""
    header: dict = {"__metadata__": dict(metadata)}
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in _DTYPE_NAMES:
            raise TypeError(f"save_checkpoint: tensors[{name!r}] has dtype {t.dtype}, which "
                            f"safetensors cannot store; convert it first")
        size = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    file.write(struct.pack("<Q", len(encoded)))
    file.write(encoded)
    for t in tensors.values():
        file.write(_tensor_bytes(t))


def save_checkpoint(path: str | os.PathLike, tensors: Mapping, meta: Mapping | None = None
                    ) -> Path:
    """Write ``tensors`` (name -> handgrad Tensor or torch tensor) and ``meta`` (anything
    JSON holds: dicts with string keys, lists, numbers, strings, bools, None) to ``path``,
    atomically, with a sha256 checksum of every tensor and of the metadata. Tensors are
    saved from the CPU; tuples in ``meta`` come back as lists. Returns the path."""
    if sys.byteorder != "little":
        raise NotImplementedError("save_checkpoint: safetensors files are little-endian; "
                                  "this machine is big-endian")
    path = Path(path)
    prepared = _prepare_tensors(tensors)
    meta = dict(meta or {})
    _check_json(meta)
    ordered = dict(sorted(prepared.items()))  # safetensors' own order of the tensors
    metadata = {"format": "pt", FORMAT_KEY: FORMAT_VERSION, META_KEY: json.dumps(meta),
                ORDER_KEY: json.dumps(list(prepared))}
    metadata[CHECKSUM_KEY] = json.dumps({
        "metadata": _metadata_digest(metadata),
        "tensors": _tensor_digests(ordered)})
    return _write_atomic(path, lambda file: _write_safetensors(file, ordered, metadata))


def _pickle_kind(path: Path) -> str | None:
    """'a pickle file' / 'a PyTorch pickle file (torch.save)' when ``path`` is one."""
    with open(path, "rb") as f:
        start = f.read(4)
    if start == b"PK\x03\x04":  # a zip archive: torch.save's format holds data.pkl
        try:
            with zipfile.ZipFile(path) as archive:
                if any(n.endswith(".pkl") for n in archive.namelist()):
                    return "a PyTorch pickle file (torch.save's zip format, with a .pkl inside)"
        except (zipfile.BadZipFile, OSError):
            return None
        return None
    if len(start) >= 2 and start[0] == 0x80 and 2 <= start[1] <= 5:  # pickle's PROTO opcode
        return "a pickle file (what pickle.dump and the legacy torch.save write)"
    return None


def _verify(path: Path, header: Mapping[str, str], raw: Mapping[str, torch.Tensor]) -> None:
    """Raise a CheckpointError naming every part of the file that fails its checksum."""
    try:
        sums = json.loads(header[CHECKSUM_KEY])
        expected_meta, expected = sums["metadata"], dict(sums["tensors"])
    except (KeyError, TypeError, ValueError) as error:
        reason = ("has no checksum" if CHECKSUM_KEY not in header
                  else f"has a corrupt checksum entry ({error})")
        raise CheckpointError(f"load_checkpoint: {path} {reason}; the file is damaged "
                              f"(refused: nothing was loaded)") from error
    failed = []
    if _metadata_digest(header) != expected_meta:
        failed.append("the JSON metadata (epoch, step, config, optimizer settings, "
                      "scheduler, Python/numpy RNG states, ...)")
    actual = _tensor_digests({name: raw[name] for name in sorted(raw) if name in expected})
    for name in sorted(set(raw) | set(expected)):
        if name not in raw:
            failed.append(f"tensor {name!r} (missing from the file)")
        elif name not in expected:
            failed.append(f"tensor {name!r} (not in the checksum list)")
        elif actual[name] != expected[name]:
            failed.append(f"tensor {name!r}")
    if failed:
        raise CheckpointError(
            f"load_checkpoint: {path} is corrupt: the checksum (sha256) does not match for "
            f"{'; '.join(failed)}. The file was damaged after it was written (disk, copy, "
            f"transfer); nothing was loaded. Use another copy or an earlier checkpoint.")


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu"
                    ) -> tuple[dict, dict]:
    """``(tensors, meta)`` from a checkpoint: tensors as handgrad Tensors on ``device``,
    meta as the JSON it was saved as. Every tensor and the metadata are checked against
    the checksums saved with them before anything is returned (CheckpointError naming
    what fails). A plain safetensors file (no handgrad metadata) loads with
    ``meta == {}``. Never unpickles anything: a pickle file is refused as such."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            raw = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as error:  # safetensors' own error type, OSError, ...
        kind = _pickle_kind(path)
        if kind is not None:
            raise CheckpointError(
                f"load_checkpoint: {path} is {kind}, not a safetensors checkpoint. handgrad "
                f"never unpickles: loading a pickle can run any code it holds. If you trust "
                f"the file, load it with torch.load(path, weights_only=True) yourself and "
                f"write its tensors with handgrad.train.save_state.") from error
        raise CheckpointError(f"load_checkpoint: {path} is not a readable safetensors "
                              f"checkpoint ({error}); it may be truncated or corrupt") from error
    version = header.get(FORMAT_KEY)
    if version is None and any(key.startswith("handgrad.") for key in header):
        raise CheckpointError(f"load_checkpoint: {path} holds handgrad metadata but no "
                              f"{FORMAT_KEY!r} entry; the file is damaged")
    if version is not None and version not in READABLE_VERSIONS:
        raise CheckpointError(f"load_checkpoint: {path} has checkpoint format {version!r}; "
                              f"this handgrad reads format {FORMAT_VERSION!r} (and the older "
                              f"{', '.join(repr(v) for v in READABLE_VERSIONS[:-1])})")
    if version == FORMAT_VERSION or CHECKSUM_KEY in header:
        _verify(path, header, raw)
    try:
        meta = json.loads(header[META_KEY]) if META_KEY in header else {}
        order = json.loads(header[ORDER_KEY]) if ORDER_KEY in header else []
    except json.JSONDecodeError as error:
        raise CheckpointError(f"load_checkpoint: the metadata in {path} is not valid JSON "
                              f"({error})") from error
    names = [n for n in order if n in raw] + [n for n in raw if n not in set(order)]
    device = torch.device(device)
    return {name: _wrap(raw[name] if device.type == "cpu" else raw[name].to(device))
            for name in names}, meta


# ---------------------------------------------------------------- nested state

_TENSOR, _NDARRAY, _TUPLE, _ITEMS = "__tensor__", "__ndarray__", "__tuple__", "__items__"
_MARKERS = {_TENSOR, _NDARRAY, _TUPLE, _ITEMS}


def flatten_state(state, prefix: str = "") -> tuple[dict[str, torch.Tensor], object]:
    """Split nested ``state`` into ``(tensors, skeleton)``: ``tensors`` maps dotted names
    (``optimizer.state.0.exp_avg``) to torch tensors, and ``skeleton`` is JSON that holds
    everything else, with ``{"__tensor__": name}`` where each tensor was.

    Understood: dicts (any keys that JSON or this encoding can hold: str, int, float,
    bool, None, tuples of those), lists, tuples, handgrad Tensors, torch tensors, numpy
    arrays and scalars, str, int, float (NaN and infinities included), bool, None.
    ``unflatten_state(tensors, skeleton)`` gives back an equal structure."""
    tensors: dict[str, torch.Tensor] = {}

    def name_for(path: list[str]) -> str:
        name = ".".join(path) or "tensor"
        unique, n = name, 1
        while unique in tensors:  # keys with dots could collide: keep names unique
            unique, n = f"{name}#{n}", n + 1
        return unique

    def encode(value, path: list[str]):
        raw = _raw(value)
        if raw is not None:
            name = name_for(path)
            tensors[name] = raw
            return {_TENSOR: name}
        if isinstance(value, np.ndarray):
            name = name_for(path)
            tensors[name] = torch.from_numpy(np.ascontiguousarray(value))
            return {_NDARRAY: name}
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, str | bool | int | float):
            return value  # NaN and infinities too: Python's json writes and reads them
        if isinstance(value, tuple):
            return {_TUPLE: [encode(v, path + [str(i)]) for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [encode(v, path + [str(i)]) for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            if all(isinstance(k, str) and k not in _MARKERS for k in value):
                return {k: encode(v, path + [k]) for k, v in value.items()}
            return {_ITEMS: [[encode(k, path + ["key"]), encode(v, path + [str(k)])]
                             for k, v in value.items()]}
        raise TypeError(f"flatten_state: {'.'.join(path) or 'state'} is a "
                        f"{type(value).__name__}, which a checkpoint cannot hold (convert it "
                        f"to numbers, strings, lists, dicts or tensors)")

    skeleton = encode(state, [prefix] if prefix else [])
    return tensors, skeleton


def unflatten_state(tensors: Mapping, skeleton):
    """The inverse of ``flatten_state``: tensors come back as they are in ``tensors``
    (``load_checkpoint`` gives handgrad Tensors), numpy arrays as numpy arrays."""

    def decode(node):
        if isinstance(node, list):
            return [decode(v) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (marker, value), = node.items()
            if marker == _TENSOR:
                return _lookup(tensors, value)
            if marker == _NDARRAY:
                return _raw(_lookup(tensors, value)).numpy().copy()
            if marker == _TUPLE:
                return tuple(decode(v) for v in value)
            if marker == _ITEMS:
                return {_hashable(decode(k)): decode(v) for k, v in value}
        return {k: decode(v) for k, v in node.items()}

    return decode(skeleton)


def _lookup(tensors: Mapping, name: str):
    if name not in tensors:
        raise CheckpointError(f"unflatten_state: the skeleton names tensor {name!r}, which is "
                              f"not among the {len(tensors)} tensors given")
    return tensors[name]


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def save_state(path: str | os.PathLike, state) -> Path:
    """``save_checkpoint`` of any nested ``state`` (e.g. ``{"model": ...state_dict(),
    "optimizer": ..., "epoch": 3, "rng": get_rng_state(), "config": {...}}``)."""
    tensors, skeleton = flatten_state(state)
    return save_checkpoint(path, tensors, {"state": skeleton})


def load_state(path: str | os.PathLike, *, device: str | torch.device = "cpu"):
    """The ``state`` that ``save_state`` wrote, tensors as handgrad Tensors."""
    tensors, meta = load_checkpoint(path, device=device)
    if "state" not in meta:
        raise CheckpointError(f"load_state: {path} was not written by save_state (its "
                              f"metadata has keys {sorted(meta)}); use load_checkpoint")
    return unflatten_state(tensors, meta["state"])


# ---------------------------------------------------------------- random number generators

def get_rng_state() -> dict:
    """The state of every generator a training run draws from, as tensors and JSON:
    Python's ``random``, numpy's global generator, torch's CPU generator, and each CUDA
    device's generator when CUDA is available. ``save_state`` can store it."""
    version, internal, gauss_next = random.getstate()
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
        "numpy": {"kind": kind, "keys": keys, "pos": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: Mapping) -> None:
    """Restore what ``get_rng_state`` captured (tensors may be handgrad or torch ones,
    numpy keys an array or a list). CUDA states are restored when CUDA is available;
    when they were saved on a machine with a different number of devices, the devices
    both have are restored and a warning says so."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss_next"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(_raw(state["torch"]).to("cpu", torch.uint8))
    saved_cuda = state.get("cuda")
    if saved_cuda is None:
        return
    if not torch.cuda.is_available():
        warnings.warn("set_rng_state: the state holds CUDA generators but CUDA is not "
                      "available; they are not restored", stacklevel=2)
        return
    count = torch.cuda.device_count()
    if len(saved_cuda) != count:
        warnings.warn(f"set_rng_state: {len(saved_cuda)} CUDA generator states saved, "
                      f"{count} devices here; restoring the first "
                      f"{min(count, len(saved_cuda))}", stacklevel=2)
    for device_index, device_state in enumerate(saved_cuda[:count]):
        torch.cuda.set_rng_state(_raw(device_state).to("cpu", torch.uint8), device_index)


def check_rng_state(state, source: str = "the RNG state") -> None:
    """Raise a CheckpointError naming the first part of ``state`` (as ``get_rng_state``
    makes it) that ``set_rng_state`` could not restore. Each part is tried on a scratch
    generator, so no global generator is touched."""
    def refuse(part: str, problem) -> CheckpointError:
        return CheckpointError(f"{source}: its {part} state cannot be restored ({problem})")

    if not isinstance(state, Mapping):
        raise refuse("whole", f"a {type(state).__name__}, not a dict")
    for part in ("python", "numpy", "torch"):
        if part not in state:
            raise refuse(part, "missing")
    try:
        python = state["python"]
        random.Random().setstate((python["version"], tuple(python["state"]),
                                  python["gauss_next"]))
    except Exception as error:
        raise refuse("Python random", error) from error
    try:
        n = state["numpy"]
        keys = np.asarray(n["keys"])
        if keys.shape != (624,) or keys.dtype.kind not in "ui":
            raise ValueError(f"keys of shape {keys.shape} and dtype {keys.dtype}; 624 "
                             f"unsigned integers expected")
        for name in ("pos", "has_gauss"):
            if type(n[name]) is not int:
                raise ValueError(f"{name} is a {type(n[name]).__name__}, not an int")
        if not 0 <= n["pos"] <= 624 or n["has_gauss"] not in (0, 1):
            raise ValueError(f"pos {n['pos']} (0 to 624) or has_gauss {n['has_gauss']} "
                             f"(0 or 1) out of range")
        np.random.RandomState().set_state((n["kind"], keys.astype(np.uint32), n["pos"],
                                           n["has_gauss"], n["cached_gaussian"]))
    except Exception as error:
        raise refuse("numpy", error) from error
    generators = [("torch CPU", state["torch"], torch.get_rng_state())]
    if state.get("cuda") is not None and torch.cuda.is_available():
        if not isinstance(state["cuda"], list | tuple):
            raise refuse("CUDA", f"a {type(state['cuda']).__name__}, not a list")
        generators += [(f"CUDA device {i}", saved, torch.cuda.get_rng_state(i))
                       for i, saved in enumerate(state["cuda"][:torch.cuda.device_count()])]
    for part, saved, current in generators:
        raw = _raw(saved)
        if raw is None or raw.dtype != torch.uint8 or raw.shape != current.shape:
            what = (f"a {type(saved).__name__}" if raw is None
                    else f"a {raw.dtype} tensor of shape {tuple(raw.shape)}")
            raise refuse(part, f"{what}; a uint8 tensor of shape {tuple(current.shape)} "
                               f"expected")
        if part == "torch CPU":
            try:
                torch.Generator().set_state(raw.cpu())
            except Exception as error:
                raise refuse(part, error) from error
