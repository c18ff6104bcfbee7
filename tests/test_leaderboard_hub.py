"""The leaderboard's queue on the Hub: submissions committed to a requests dataset, reviewed by
`medsyn leaderboard accept|reject`, read back from the results dataset by the Space's Reload.

Everything goes through the real huggingface_hub client against the local Hub server of tests/hub_server.py;
the Space is `python leaderboard/app.py` in its own process, driven through gradio_client.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import HfApi
from support import load_module

from medsyn.publish import leaderboard as lb
from medsyn.publish import review
from medsyn.publish.hub import HubError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "tests" / "data" / "results"


def _hub_server():
    return load_module("hub_server", Path(__file__).with_name("hub_server.py"))


hub_server = _hub_server()
TOKEN, fake_hub = hub_server.TOKEN, hub_server.fake_hub  # fake_hub: a fixture
REQUESTS, RESULTS = ("dataset", "org/requests"), ("dataset", "org/results")


def _known() -> dict:
    dataset = json.loads((EXAMPLES / "example-open-7b.json").read_text())["dataset"]
    return {dataset["revision"]: {"name": dataset["name"], "n_cases": dataset["n_cases"]}}


def _env(hub, tmp_path: Path, name: str) -> dict[str, str]:
    """A process's environment: the Hub at ``hub``, its own HF_HOME and pending folder (lost with it)."""
    datasets = tmp_path / "datasets.json"
    datasets.write_text(json.dumps(_known()))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MEDSYN_")) and k != "TRANSFORMERS_OFFLINE"}
    return {**base, "PYTHONPATH": str(ROOT / "src"), "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN,
            "HF_HOME": str(tmp_path / name / "hf_home"), "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "MEDSYN_REQUESTS_REPO": REQUESTS[1], "MEDSYN_RESULTS_REPO": RESULTS[1], "MEDSYN_DATASETS": str(datasets),
            "MEDSYN_PENDING_DIR": str(tmp_path / name / "pending"), "GRADIO_SERVER_NAME": "127.0.0.1"}


def _medsyn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "medsyn.cli", *args], capture_output=True, text=True, env=env,
                            timeout=180)
    assert TOKEN not in result.stdout + result.stderr
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _space(env: dict[str, str], log: Path):
    """``python leaderboard/app.py`` as the Space runs it; yields a gradio_client.Client; always stopped."""
    from gradio_client import Client

    port = _free_port()
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT / "leaderboard", stdout=out,
                                   stderr=subprocess.STDOUT, env={**env, "GRADIO_SERVER_PORT": str(port)})
    try:
        url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        yield Client(url, verbose=False)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert TOKEN not in log.read_text()


def _submit(client, path: Path, note: str = "") -> str:
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), note, api_name="/submit")


def _reload(client) -> tuple[list[str], list[list]]:
    """Press Reload: the English table's models and the Submissions tab's rows."""
    outputs = client.predict(["open", "proprietary", "medical", "reference"], list(lb.SIZE_BUCKETS),
                             lb.DEFAULT_GROUPS, None, "en", "en", api_name="/reload")
    english, status = outputs[0], outputs[-2]
    return [row[0] for row in english["value"]["data"]], status["data"]


def _request(hub, sid: str) -> dict:
    return json.loads(hub.repos[REQUESTS]["files"][f"{sid}/request.json"])


def test_submit_pending_accept_then_reload_shows_the_row(fake_hub, tmp_path):
    env = _env(fake_hub, tmp_path, "space")
    example = EXAMPLES / "example-proprietary.json"
    raw = example.read_bytes()
    sid = review.submission_id(raw)
    with _space(env, tmp_path / "space.log") as client:
        models, status = _reload(client)
        assert models == [lb.PHYSICIANS["name"]] and status == []  # nothing yet; the results repo does not exist

        verdict = _submit(client, example, "run on 1 GPU")
        assert verdict.startswith(f"Accepted for review: example-proprietary on MEDSYN-mini was saved as submission {sid} "
                                  "(status PENDING) in the Hub dataset org/requests."), verdict
        files = fake_hub.repos[REQUESTS]["files"]
        assert set(files) == {f"{sid}/results.json", f"{sid}/request.json"} and files[f"{sid}/results.json"] == raw
        record = _request(fake_hub, sid)
        assert (record["status"], record["note"], record["sha256"]) == ("PENDING", "run on 1 GPU", hashlib.sha256(raw).hexdigest())
        assert fake_hub.repos[REQUESTS]["private"] is True and RESULTS not in fake_hub.repos
        assert not Path(env["MEDSYN_PENDING_DIR"]).exists()  # nothing on the Space's own disk
        assert _submit(client, example) == f"Refused: this exact file was already submitted: submission {sid}, status PENDING."

        listed = _medsyn(env, "leaderboard", "list")
        assert listed.returncode == 0 and listed.stdout.startswith(f"{sid}  PENDING  "), listed.stderr
        accepted = _medsyn(env, "leaderboard", "accept", sid, "--reason", "command and revision checked")
        assert accepted.returncode == 0, accepted.stderr
        assert accepted.stdout.strip() == f"{sid}: ACCEPTED; example-proprietary is now {sid}/results.json in the Hub dataset org/results"
        assert fake_hub.repos[RESULTS]["files"] == {f"{sid}/results.json": raw}
        assert _request(fake_hub, sid)["status"] == "ACCEPTED"

        models, status = _reload(client)
        assert models == [lb.PHYSICIANS["name"], "example-proprietary"]
        assert [row[:2] + row[4:7] for row in status] == [
            [sid, "example-proprietary", "ACCEPTED", status[0][5], "command and revision checked"]]
    again = _medsyn(env, "leaderboard", "accept", sid, "--reason", "twice")
    assert again.returncode == 1 and again.stderr.startswith(f"medsyn leaderboard accept: error: submission {sid} is already ACCEPTED (")


def test_a_restart_between_submission_and_review_loses_nothing_and_a_rejection_shows_its_reason(fake_hub, tmp_path):
    first, second = _env(fake_hub, tmp_path, "first"), _env(fake_hub, tmp_path, "second")
    files = {name: EXAMPLES / f"example-{name}.json" for name in ("proprietary", "medical-8b")}
    ids = {name: review.submission_id(path.read_bytes()) for name, path in files.items()}
    with _space(first, tmp_path / "first.log") as client:
        for path in files.values():
            assert _submit(client, path).startswith("Accepted for review: "), path
    # a new process, with a fresh disk (HF_HOME and pending folder): only the Hub carries the submissions
    with _space(second, tmp_path / "second.log") as client:
        models, status = _reload(client)
        assert models == [lb.PHYSICIANS["name"]]
        assert sorted((row[0], row[4]) for row in status) == sorted((sid, "PENDING") for sid in ids.values())
        assert _medsyn(second, "leaderboard", "accept", ids["medical-8b"]).returncode == 0
        rejected = _medsyn(second, "leaderboard", "reject", ids["proprietary"], "--reason", "judge model not disclosed")
        assert rejected.returncode == 0, rejected.stderr
        models, status = _reload(client)
        assert models == [lb.PHYSICIANS["name"], "example-medical-8b"]
        reasons = {row[0]: (row[4], row[6]) for row in status}
        assert reasons == {ids["medical-8b"]: ("ACCEPTED", ""), ids["proprietary"]: ("REJECTED", "judge model not disclosed")}
    assert not Path(first["MEDSYN_PENDING_DIR"]).exists() and not Path(second["MEDSYN_PENDING_DIR"]).exists()


@pytest.fixture
def online(fake_hub, tmp_path, monkeypatch):
    """This process talks to the local Hub (not offline), with its cache under tmp_path; yields a requests store."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return review.HubStore(REQUESTS[1], HfApi(endpoint=fake_hub.url, token=TOKEN), TOKEN, 10.0)


def test_a_failed_upload_tells_the_submitter_and_writes_nothing(fake_hub, online):
    example = EXAMPLES / "example-open-7b.json"
    fake_hub.fail_commits = 1
    accepted, message = lb.submit(example, online, _known(), note="x")
    assert not accepted
    assert message.startswith(f"Not saved: the Hub at {fake_hub.url} refused the request (HTTP 500): Internal Error"), message
    assert message.endswith("Nothing was stored; please submit the file again later.") and TOKEN not in message
    assert fake_hub.repos[REQUESTS]["files"] == {}
    accepted, message = lb.submit(example, online, _known(), note="x")  # the retry goes through, whole
    assert accepted, message
    assert len(fake_hub.repos[REQUESTS]["files"]) == 2 and fake_hub.repos[REQUESTS]["commits"] == 1


def test_a_review_on_top_of_a_moved_queue_is_refused(fake_hub, online):
    assert lb.submit(EXAMPLES / "example-open-7b.json", online, _known())[0]
    version, _ = online.files()
    assert lb.submit(EXAMPLES / "example-proprietary.json", online, _known())[0]  # another writer, meanwhile
    with pytest.raises(HubError, match=r"refused the request \(HTTP 412\): A commit has happened since"):
        online.commit({"x/request.json": b"{}"}, "stale", version)
    assert "x/request.json" not in fake_hub.repos[REQUESTS]["files"]


def test_an_unreachable_results_dataset_is_a_listed_problem(fake_hub, online, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    board = lb.load_board({"MEDSYN_RESULTS_REPO": RESULTS[1]})
    assert board.entries == []
    [problem] = board.problems
    assert problem.startswith(f"the results dataset {RESULTS[1]} could not be read: cannot reach the Hugging Face Hub at http://127.0.0.1:")


def test_a_space_without_a_requests_dataset_takes_no_submission(tmp_path):
    with pytest.raises(HubError, match="this Space has no MEDSYN_REQUESTS_REPO"):
        with review.requests_store({"SPACE_ID": "org/lb", "MEDSYN_PENDING_DIR": str(tmp_path)}, tmp_path):
            pass


def test_review_refusals_name_the_case(tmp_path):
    requests, results = review.LocalStore(tmp_path / "requests"), review.LocalStore(tmp_path / "results")
    raw = (EXAMPLES / "example-open-7b.json").read_bytes()
    sid = review.submission_id(raw)
    assert lb.submit(EXAMPLES / "example-open-7b.json", requests.folder, _known())[0]
    with pytest.raises(review.ReviewError, match=f"no submission 'nope' in the local folder .* \\(submissions: {sid}\\)"):
        review.review(requests, results, "nope", accept=True, reason="")
    with pytest.raises(review.ReviewError, match="a rejection needs a reason"):
        review.review(requests, results, sid, accept=False, reason=" ")
    (requests.folder / sid / "results.json").write_bytes(raw.replace(b"example-open-7b", b"example-open-8b"))
    with pytest.raises(review.ReviewError, match=f"{sid}/results.json in the local folder .* changed since it was submitted"):
        review.review(requests, results, sid, accept=True, reason="", known=_known())
    assert not results.folder.exists()
    (requests.folder / sid / "results.json").write_bytes(raw)
    record = review.review(requests, results, sid, accept=True, reason="ok", known=_known())
    assert record["status"] == "ACCEPTED" and (results.folder / sid / "results.json").read_bytes() == raw
    assert [e.source for e in lb.load_folder(results.folder).entries] == [f"{sid}/results.json"]
