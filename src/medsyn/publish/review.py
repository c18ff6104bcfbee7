"""The leaderboard's submission queue and its review: a requests dataset and a results dataset.

As in the Hub's leaderboard template, the **requests dataset** (``MEDSYN_REQUESTS_REPO``) is the queue: a
submission is one commit of ``<id>/results.json`` (the bytes submitted) and ``<id>/request.json`` (its
status, ``PENDING`` / ``ACCEPTED`` / ``REJECTED``, the submitter's note, the file's sha256, and the
reviewer's reason). ``<id>`` is the file's sha256 prefix, so the same file twice is refused. Accepting copies
the file to ``<id>/results.json`` of the **results dataset** (``MEDSYN_RESULTS_REPO``) that the Space reads.
Every Hub call goes through ``HfApi`` (:func:`medsyn.publish.hub.hub_session`); each commit names the
commit it builds on, so two writers never overwrite each other. A local folder stands in for either
dataset on a local run (``MEDSYN_PENDING_DIR``, ``MEDSYN_RESULTS_DIR``), never on a Space.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Mapping, Protocol

import pandas as pd
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from medsyn.metrics.results_schema import KnownDatasets, validate_results
from medsyn.publish.hub import HubError, hub_session, hub_step

STATUSES = ("PENDING", "ACCEPTED", "REJECTED")
RESULTS_FILE, REQUEST_FILE = "results.json", "request.json"
ID_LENGTH = 12
MAX_NOTE = 500
STATUS_COLUMNS = ["Submission", "Model", "Dataset", "Submitted (UTC)", "Status", "Reviewed (UTC)", "Reason", "Note"]


class ReviewError(Exception):
    """A submission or review that cannot be done; the message is one line for the submitter or maintainer."""


class Store(Protocol):
    """Where submissions or results live: a Hub dataset or a local folder."""

    where: str

    def files(self) -> tuple[str | None, set[str]]:
        """(the current version, or None for a local folder or a repo not created yet; every file path)."""

    def read(self, path: str, version: str | None) -> bytes: ...

    def commit(self, files: dict[str, bytes], message: str, version: str | None) -> None:
        """Write ``files`` all together or not at all, on top of ``version``."""


@dataclass
class HubStore:
    """A dataset repo on the Hub, through ``HfApi``; failures become one-line HubErrors without the token."""

    repo_id: str
    api: HfApi
    token: str
    seconds: float

    @property
    def where(self) -> str:
        return f"the Hub dataset {self.repo_id}"

    def files(self) -> tuple[str | None, set[str]]:
        with hub_step(f"reading {self.repo_id}", self.token, self.seconds):
            try:
                info = self.api.repo_info(self.repo_id, repo_type="dataset")
            except RepositoryNotFoundError:
                return None, set()
        return info.sha, {sibling.rfilename for sibling in info.siblings or []}

    def read(self, path: str, version: str | None) -> bytes:
        with hub_step(f"reading {self.repo_id}/{path}", self.token, self.seconds):
            local = self.api.hf_hub_download(self.repo_id, path, repo_type="dataset", revision=version)
        return Path(local).read_bytes()

    def commit(self, files: dict[str, bytes], message: str, version: str | None) -> None:
        with hub_step(f"writing to {self.repo_id}", self.token, self.seconds):
            if version is None:  # created private on the first write; a maintainer may make it public
                self.api.create_repo(self.repo_id, repo_type="dataset", private=True, exist_ok=True)
            self.api.create_commit(self.repo_id, repo_type="dataset", commit_message=message, parent_commit=version,
                                   operations=[CommitOperationAdd(path, data) for path, data in files.items()])


@dataclass
class LocalStore:
    """A local folder (local runs only): each file is written whole, then moved into place."""

    folder: Path

    @property
    def where(self) -> str:
        return f"the local folder {self.folder}"

    def files(self) -> tuple[str | None, set[str]]:
        if not self.folder.is_dir():
            return None, set()
        return None, {p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file()}

    def read(self, path: str, version: str | None) -> bytes:
        return (self.folder / path).read_bytes()

    def commit(self, files: dict[str, bytes], message: str, version: str | None) -> None:
        staged = []
        try:
            for path, data in files.items():
                target = self.folder / path
                target.parent.mkdir(parents=True, exist_ok=True)
                handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                staged.append((temporary, target))
        except OSError:
            for temporary, _ in staged:
                os.unlink(temporary)
            raise
        for temporary, target in staged:  # request.json last: a submission is listed once it is whole
            os.replace(temporary, target)


# --- where the datasets are -------------------------------------------------------------------


@contextmanager
def requests_store(env: Mapping[str, str], default_dir: Path | None = None) -> Iterator[Store]:
    """The requests dataset: ``MEDSYN_REQUESTS_REPO``, else ``MEDSYN_PENDING_DIR`` (else ``default_dir``), which
    is refused on a Space (``SPACE_ID`` set): a Space's disk is lost when it restarts."""
    if env.get("MEDSYN_REQUESTS_REPO"):
        with hub_session() as (api, token, seconds):
            yield HubStore(env["MEDSYN_REQUESTS_REPO"], api, token, seconds)
        return
    if env.get("SPACE_ID"):
        raise HubError("this Space has no MEDSYN_REQUESTS_REPO (a requests dataset): submissions are closed, "
                       "since a Space's own disk is lost when it restarts")
    folder = env.get("MEDSYN_PENDING_DIR") or default_dir
    if not folder:
        raise HubError("no requests dataset: set MEDSYN_REQUESTS_REPO (a Hub dataset) or MEDSYN_PENDING_DIR (a folder)")
    yield LocalStore(Path(folder))


@contextmanager
def results_store(env: Mapping[str, str]) -> Iterator[Store]:
    """The results dataset the leaderboard reads: ``MEDSYN_RESULTS_DIR``, else ``MEDSYN_RESULTS_REPO``."""
    if env.get("MEDSYN_RESULTS_DIR"):
        yield LocalStore(Path(env["MEDSYN_RESULTS_DIR"]))
    elif env.get("MEDSYN_RESULTS_REPO"):
        with hub_session() as (api, token, seconds):
            yield HubStore(env["MEDSYN_RESULTS_REPO"], api, token, seconds)
    else:
        raise HubError("no results dataset: set MEDSYN_RESULTS_REPO (a Hub dataset) or MEDSYN_RESULTS_DIR (a folder)")


# --- the queue --------------------------------------------------------------------------------


def submission_id(raw: bytes) -> str:
    """A submission's id: the first characters of its file's sha256."""
    return hashlib.sha256(raw).hexdigest()[:ID_LENGTH]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _request_bytes(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def add_submission(store: Store, raw: bytes, obj: dict, note: str = "") -> dict:
    """Queue a checked results file as PENDING; return its request record. ReviewError for a duplicate or
    a note over MAX_NOTE characters; HubError when the store cannot be written (then nothing was)."""
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ReviewError(f"the note is {len(note)} characters; at most {MAX_NOTE} are kept")
    sid = submission_id(raw)
    version, files = store.files()
    if f"{sid}/{REQUEST_FILE}" in files:
        earlier = _record(store, sid, version)
        raise ReviewError(f"this exact file was already submitted: submission {sid}, status {earlier['status']}")
    record = {"id": sid, "status": "PENDING", "model": obj["model"]["name"], "dataset": obj["dataset"]["name"],
              "revision": obj["dataset"]["revision"], "sha256": hashlib.sha256(raw).hexdigest(), "note": note,
              "submitted_at": _now(), "reviewed_at": None, "reason": None}
    store.commit({f"{sid}/{RESULTS_FILE}": raw, f"{sid}/{REQUEST_FILE}": _request_bytes(record)},
                 f"Submit {record['model']} on {record['dataset']} ({sid})", version)
    return record


def _record(store: Store, sid: str, version: str | None) -> dict:
    """The request record of ``sid``; ReviewError naming the file when it is not one."""
    try:
        record = json.loads(store.read(f"{sid}/{REQUEST_FILE}", version))
    except ValueError as error:
        raise ReviewError(f"{sid}/{REQUEST_FILE} in {store.where} is not JSON: {error}") from None
    if not isinstance(record, dict) or record.get("id") != sid or record.get("status") not in STATUSES:
        raise ReviewError(f"{sid}/{REQUEST_FILE} in {store.where} is not a request record "
                          f"(it needs \"id\": {sid!r} and a status among {', '.join(STATUSES)})")
    return record


def list_requests(store: Store) -> tuple[list[dict], list[str]]:
    """Every request record, newest first, and one line per request file that cannot be read."""
    version, files = store.files()
    records, problems = [], []
    for path in sorted(p for p in files if p.endswith(f"/{REQUEST_FILE}") and p.count("/") == 1):
        try:
            records.append(_record(store, path.split("/")[0], version))
        except ReviewError as error:
            problems.append(str(error))
    return sorted(records, key=lambda r: str(r.get("submitted_at")), reverse=True), problems


def review(requests: Store, results: Store | None, sid: str, accept: bool, reason: str,
           known: KnownDatasets | None = None) -> dict:
    """Accept (copy the file into ``results``) or reject a PENDING submission; record the status and reason.

    An accepted file is checked again: its sha256 must be the one recorded at submission, and it must pass
    :func:`validate_results` against ``known``. The results commit comes first, so a failure between the two
    commits leaves the request PENDING and the command can be run again. Returns the updated record.
    """
    if not reason.strip() and not accept:
        raise ReviewError("a rejection needs a reason (--reason); the submitter sees it in the status tab")
    version, files = requests.files()
    if f"{sid}/{REQUEST_FILE}" not in files:
        ids = sorted(p.split("/")[0] for p in files if p.endswith(f"/{REQUEST_FILE}"))
        raise ReviewError(f"no submission {sid!r} in {requests.where} (submissions: {', '.join(ids) or 'none'})")
    record = _record(requests, sid, version)
    if record["status"] != "PENDING":
        raise ReviewError(f"submission {sid} is already {record['status']} ({record['reviewed_at']}: {record['reason']})")
    if accept:
        if results is None:
            raise ReviewError("accepting needs the results dataset (MEDSYN_RESULTS_REPO or MEDSYN_RESULTS_DIR)")
        raw = requests.read(f"{sid}/{RESULTS_FILE}", version)
        if hashlib.sha256(raw).hexdigest() != record["sha256"]:
            raise ReviewError(f"{sid}/{RESULTS_FILE} in {requests.where} changed since it was submitted "
                              "(its sha256 is not the one recorded); not accepted")
        problems = validate_results(json.loads(raw), known)
        if problems:
            raise ReviewError(f"{sid}/{RESULTS_FILE} no longer passes the checks: " + "; ".join(problems))
        results_version, _ = results.files()
        results.commit({f"{sid}/{RESULTS_FILE}": raw}, f"Add {record['model']} on {record['dataset']} ({sid})",
                       results_version)
    record.update(status="ACCEPTED" if accept else "REJECTED", reviewed_at=_now(), reason=reason.strip())
    requests.commit({f"{sid}/{REQUEST_FILE}": _request_bytes(record)}, f"{record['status'].title()} {sid}", version)
    return record


def status_table(records: list[dict]) -> pd.DataFrame:
    """The submissions' status tab: one row per request, newest first."""
    rows = [[r["id"], r.get("model"), r.get("dataset"), r.get("submitted_at"), r["status"],
             r.get("reviewed_at") or "", r.get("reason") or "", r.get("note") or ""] for r in records]
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def run_review(env: Mapping[str, str], sid: str | None, action: str, reason: str = "",
               known: KnownDatasets | None = None) -> str:
    """``medsyn leaderboard list|accept|reject``: the datasets come from ``env`` (MEDSYN_REQUESTS_REPO or
    MEDSYN_PENDING_DIR; MEDSYN_RESULTS_DIR or MEDSYN_RESULTS_REPO). Returns what to print."""
    with requests_store(env) as requests:
        if action == "list":
            records, problems = list_requests(requests)
            lines = [f"{r['id']}  {r['status']:8s}  {r.get('submitted_at')}  {r.get('model')} on {r.get('dataset')}"
                     + (f"  ({r['reason']})" if r.get("reason") else "") for r in records]
            return "\n".join(lines + problems) or f"no submissions in {requests.where}"
        if action == "reject":
            record = review(requests, None, sid, accept=False, reason=reason)
            return f"{sid}: REJECTED in {requests.where} ({record['reason']})"
        with results_store(env) as results:
            record = review(requests, results, sid, accept=True, reason=reason, known=known)
            return f"{sid}: ACCEPTED; {record['model']} is now {sid}/{RESULTS_FILE} in {results.where}"
