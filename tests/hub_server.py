"""A small local server on 127.0.0.1 that speaks the Hugging Face Hub's HTTP API for the calls medsyn makes.

It answers what ``huggingface_hub.HfApi`` sends for a small repo without LFS rules: repos/create, settings,
repo info (at main or a revision), tree, preupload ("regular"), the ndjson commit (with ``parentCommit`` checked, as the
Hub does: 412 when the branch moved), and ``resolve`` (HEAD and GET, for ``hf_hub_download`` and
``snapshot_download``). Repos live in memory, and the server outlives the processes that use it, so a test
can restart a client (the leaderboard Space) and find its repos as they were. Files that the real Hub sends
through Xet/LFS (parquet, or anything above 10 MB) are not exercised: that path is huggingface_hub's.

Used by tests/test_upload.py and tests/test_leaderboard_hub.py (the ``fake_hub`` fixture).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest

TOKEN = "hf_medsynDummyToken0123456789"


class FakeHub(ThreadingHTTPServer):
    """The server; ``repos[(type, id)]`` = {private, gated, files: {path: bytes}, commits}; ``log`` = (method, path)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos: dict[tuple[str, str], dict] = {}
        self.log: list[tuple[str, str]] = []
        self.fail_commits = 0
        """Refuse the next this-many commits with HTTP 500 (a Hub outage in the middle of a submission)."""
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def sha(self, repo: dict) -> str:
        return f"{repo['commits']:040x}"


def git_oid(content: bytes) -> str:
    """The git blob id the Hub reports for a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _route(self, method: str) -> None:
        path = unquote(urlsplit(self.path).path)
        self.server.log.append((method, path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(401, {"error": "Invalid credentials in Authorization header"})
        with self.server.lock:
            return self._answer(method, path)

    def _answer(self, method: str, path: str) -> None:
        if method == "POST" and path == "/api/validate-yaml":  # the real Hub checks a card's metadata here
            return self._reply(200, {"errors": [], "warnings": []})
        if method == "POST" and path == "/api/repos/create":
            body = json.loads(self._body())
            key = (body.get("type", "model"), f"{body['organization']}/{body['name']}")
            if key in self.server.repos:
                return self._reply(409, {"error": "You already created this repo", "url": f"{self.server.url}/{key[1]}"})
            self.server.repos[key] = {"private": body.get("visibility") == "private", "gated": False, "files": {}, "commits": 0}
            return self._reply(200, {"url": f"{self.server.url}/{key[0]}s/{key[1]}"})
        resolve = re.fullmatch(r"/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if resolve and method in ("GET", "HEAD"):
            return self._resolve((resolve[1] or "models")[:-1], resolve[2], resolve[4])
        match = re.fullmatch(r"/api/(dataset|space|model)s/([^/]+/[^/]+)(?:/(settings|tree|preupload|commit|revision)(?:/.*)?)?", path)
        if not match or (match[1], match[2]) not in self.server.repos:
            return self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        repo, action = self.server.repos[(match[1], match[2])], match[3]
        if action == "settings" and method == "PUT":
            body = json.loads(self._body())
            repo["gated"] = body.get("gated", repo["gated"])
            if "visibility" in body or "private" in body:
                repo["private"] = body.get("visibility", "private" if body.get("private") else "public") == "private"
            return self._reply(200, {})
        if action == "tree" and method == "GET":
            files = [{"type": "file", "oid": git_oid(c), "size": len(c), "path": p} for p, c in sorted(repo["files"].items())]
            return self._reply(200, files)
        if action == "preupload" and method == "POST":
            files = json.loads(self._body())["files"]
            return self._reply(200, {"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                 "oid": git_oid(repo["files"][f["path"]]) if f["path"] in repo["files"] else None}
                for f in files
            ]})
        if action == "commit" and method == "POST":
            return self._commit(repo, match[1], match[2])
        if action in ("revision", None) and method == "GET":  # repo_info, at a revision or at main
            return self._reply(200, {"id": match[2], "sha": self.server.sha(repo), "private": repo["private"],
                                     "siblings": [{"rfilename": p} for p in sorted(repo["files"])]})
        return self._reply(405, {"error": f"{method} {path} is not handled by the fake Hub"})

    def _commit(self, repo: dict, kind: str, repo_id: str) -> None:
        if self.server.fail_commits:
            self.server.fail_commits -= 1
            return self._reply(500, {"error": "Internal Error - We're working hard to fix this as soon as possible!"})
        files = dict(repo["files"])
        for line in self._body().splitlines():
            item = json.loads(line)
            if item["key"] == "header":
                parent = item["value"].get("parentCommit")
                if parent is not None and parent != self.server.sha(repo):
                    return self._reply(412, {"error": "A commit has happened since. Please refresh and try again."})
            elif item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] == "deletedFile":
                files.pop(item["value"]["path"])
            else:
                return self._reply(400, {"error": f"the fake Hub does not handle {item['key']}"})
        repo["files"] = files  # all of the commit or nothing
        repo["commits"] += 1
        oid = self.server.sha(repo)
        return self._reply(200, {"commitUrl": f"{self.server.url}/{kind}s/{repo_id}/commit/{oid}", "commitOid": oid, "success": True})

    def _resolve(self, kind: str, repo_id: str, file: str) -> None:
        repo = self.server.repos.get((kind, repo_id))
        if repo is None:
            return self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        if file not in repo["files"]:
            return self._reply(404, {"error": "Entry not found"},
                               {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": self.server.sha(repo)})
        content = repo["files"][file]
        return self._send(200, content, {"Content-Type": "application/octet-stream", "ETag": f'"{git_oid(content)}"',
                                         "X-Repo-Commit": self.server.sha(repo)})

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")


@pytest.fixture
def fake_hub():
    """A running FakeHub for one test; shut down after it."""
    hub = FakeHub()
    thread = threading.Thread(target=hub.serve_forever, daemon=True)
    thread.start()
    yield hub
    hub.shutdown()
    hub.server_close()
