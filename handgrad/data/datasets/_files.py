"""Where dataset files are looked for, the error when they are missing, and downloads.

Look-up order for a data file (first hit wins):

1. ``root=`` when the caller gives one (and then only there);
2. else the directory in the ``HANDGRAD_DATA`` environment variable, if set;
3. else (and also after 2.) the cache, ``$XDG_CACHE_HOME/handgrad`` or
   ``~/.cache/handgrad``.

Inside each of those, a dataset may also look in its own sub-directory (``mnist/``).
Downloads go to ``root`` when given, else to the cache -- never into ``HANDGRAD_DATA``,
which may be a shared, read-only directory. A download is streamed into a temporary
file next to its destination, its sha256 is checked, and only then is it renamed into
place: an interrupted or corrupted download never looks like a good file.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

DATA_ENV_VAR = "HANDGRAD_DATA"
_CHUNK = 1 << 20


class MissingDataError(FileNotFoundError):
    """A data file was not found; the message lists where it was looked for and how to
    get it."""


class DataFileError(ValueError):
    """A data file exists but is corrupt, truncated or not in the expected format."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/handgrad``, or ``~/.cache/handgrad``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "handgrad"


def search_dirs(root: str | os.PathLike | None, subdirs: Sequence[str] = ()) -> list[Path]:
    """The directories to search, in order (see the module docstring), each followed by
    its ``subdirs``."""
    if root is not None:
        bases = [Path(root).expanduser()]
    else:
        bases = []
        if os.environ.get(DATA_ENV_VAR):
            bases.append(Path(os.environ[DATA_ENV_VAR]).expanduser())
        bases.append(cache_dir())
    dirs = []
    for base in bases:
        dirs.append(base)
        dirs.extend(base / sub for sub in subdirs)
    return dirs


def download_dir(root: str | os.PathLike | None, subdir: str = "") -> Path:
    """Where downloads go: ``root`` (or the cache), plus ``subdir``."""
    base = Path(root).expanduser() if root is not None else cache_dir()
    return base / subdir if subdir else base


def find_file(names: Sequence[str], dirs: Sequence[Path]) -> Path | None:
    """The first ``dir / name`` that is a file, trying every name in each dir in turn."""
    for directory in dirs:
        for name in names:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def missing_data_error(what: str, names: Sequence[str], dirs: Sequence[Path],
                       how: str) -> MissingDataError:
    """The error for a missing data file: what, which names, where, and how to get it."""
    looked = "\n".join(f"  {d}" for d in dirs)
    env = os.environ.get(DATA_ENV_VAR)
    env_line = (f"{DATA_ENV_VAR} is set to {env!r}." if env else
                f"{DATA_ENV_VAR} is not set (it names a directory of data files).")
    return MissingDataError(
        f"{what}: none of {', '.join(names)} was found. Looked in:\n{looked}\n{env_line}\n"
        f"How to get it: {how}")


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(urls: str | Sequence[str], destination: str | os.PathLike, sha256: str, *,
             timeout: float = 60.0, quiet: bool = False) -> Path:
    """Download the first URL of ``urls`` that works to ``destination``, checking its
    sha256; other URLs are mirrors tried in turn. Any scheme urllib knows works
    (``https://``, ``file://``). Returns the destination path.

    Raises ``OSError`` listing every URL tried and why it failed (a wrong checksum is
    one of the reasons: the file is deleted, not kept)."""
    urls = [urls] if isinstance(urls, str) else list(urls)
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        if not quiet:
            print(f"handgrad: downloading {url} -> {destination}", file=sys.stderr)
        partial = destination.with_name(f".{destination.name}.part-{os.getpid()}")
        try:
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=timeout) as response, \
                    open(partial, "wb") as out:
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256.lower():
                raise DataFileError(f"sha256 mismatch: expected {sha256}, got "
                                    f"{digest.hexdigest()} (a corrupt or changed file)")
            os.replace(partial, destination)
            return destination
        except (OSError, ValueError) as error:
            failures.append(f"  {url}: {error}")
        finally:
            if partial.exists():
                partial.unlink()
    raise OSError(f"could not download {destination.name}; tried:\n" + "\n".join(failures)
                  + f"\nDownload it yourself and put it in {destination.parent} (or in the "
                    f"directory that {DATA_ENV_VAR} names).")
