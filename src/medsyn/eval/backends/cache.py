"""A small disk cache of model outputs, shared by the model backends.

One JSON line per finished result, appended and flushed as soon as the result
exists, so a run killed midway keeps every finished sample and a rerun only
computes the rest. Keys come from :func:`request_key`, a sha256 of everything
that determines an output (model identity and the backend's settings that change an output,
request kind, exact query text, the bytes of every image, choices, generation parameters,
the medsyn and prompt versions): a changed dataset, model, setting or release gives new keys,
so stale outputs are never reused. Only valid results are stored: backends check a reply
before they ``put`` it.

>>> import tempfile
>>> cache = ResponseCache(tempfile.mkdtemp(), "demo-model")
>>> key = request_key(model={"name": "m"}, kind="generate", query="Hi", images=[b"png"])
>>> cache.get(key) is None
True
>>> cache.put(key, {"texts": ["Hello"]})
>>> ResponseCache(cache.path.parent, "demo-model").get(key)
{'texts': ['Hello']}
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from medsyn import __version__
from medsyn.eval.prompts import PROMPT_VERSION

logger = logging.getLogger(__name__)


def responses_dir() -> Path:
    """The default folder of response caches: ``$MEDSYN_CACHE/responses``."""
    from medsyn.data.locations import cache_root

    return cache_root() / "responses"


def image_digest(image: bytes | Image.Image) -> str:
    """sha256 of an image: of its bytes, or of a PIL image's mode, size and pixels."""
    if isinstance(image, (bytes, bytearray)):
        return hashlib.sha256(image).hexdigest()
    if isinstance(image, Image.Image):
        h = hashlib.sha256(f"{image.mode}|{image.size[0]}x{image.size[1]}|".encode())
        h.update(image.tobytes())
        return h.hexdigest()
    raise TypeError(f"cannot hash an image of type {type(image).__name__}")


def request_key(
    *,
    model: Any,
    kind: str,
    query: str,
    images: Sequence[bytes | Image.Image] = (),
    choices: Sequence[str] = (),
    params: dict[str, Any] | None = None,
) -> str:
    """sha256 (hex) of everything that determines one model output.

    ``model`` is any JSON-serialisable identity (name, served revision, ...);
    ``kind`` names the request type (e.g. "generate", "logprobs", "samples");
    ``params`` holds the generation parameters. Images are hashed with
    :func:`image_digest`, in order. The medsyn and prompt versions are always part of the key.
    """
    payload = {
        "versions": {"medsyn": __version__, "prompt": PROMPT_VERSION},
        "model": model,
        "kind": kind,
        "query": query,
        "images": [image_digest(image) for image in images],
        "choices": list(choices),
        "params": params or {},
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Append-only JSON-lines cache at ``directory/<namespace>.jsonl``.

    ``namespace`` is a label (usually the model name; unsafe characters become
    ``_``) that keeps one model's file apart from another's; correctness comes
    from the keys, not from the file name. ``put`` appends one line on an append-mode
    descriptor under an exclusive lock of the file (``flock``), so concurrent writers
    (threads, or the ranks of a data-parallel run) never interleave lines, and a reader
    never mistakes a line being written for a cut-off one; a line cut off by a killed
    process is dropped when the file is next opened.
    """

    def __init__(self, directory: str | os.PathLike[str], namespace: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", namespace).strip("._") or "default"
        directory = Path(directory).expanduser()
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{slug}.jsonl"
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # no writer is midway through a line while this reads
            data = f.read()
            complete = data[: data.rfind(b"\n") + 1]
            if len(complete) < len(data):
                logger.warning("%s: dropping a cut-off last line (%d bytes)", self.path, len(data) - len(complete))
                f.truncate(len(complete))
        for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
            try:
                record = json.loads(line)
                self._entries[record["key"]] = record["value"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                logger.warning("%s:%d: skipping an unreadable cache line (%s)", self.path, number, exc)

    def _init_registry(self, registry: object) -> None:
        """lighteval's Pipeline calls this on ``model._cache``; keys need no task registry, so nothing to do."""

    def get(self, key: str) -> dict | None:
        """The stored value for ``key``, or None."""
        return self._entries.get(key)

    def put(self, key: str, value: dict) -> None:
        """Store ``value`` (a JSON-serialisable dict) under ``key`` and append it to disk now."""
        line = json.dumps({"key": key, "value": value}, ensure_ascii=False, separators=(",", ":")) + "\n"
        data = memoryview(line.encode("utf-8"))
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
                while data:  # a write may take part of a long line
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
            self._entries[key] = value

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
