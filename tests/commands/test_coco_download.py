"""`neo data coco`: resumed downloads, checksums, atomic extraction, idempotency (local server)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from neo.cli import main
from neo.commands import coco_download
from neo.commands.coco_download import Archive, ChecksumError, DownloadError, fetch_archives


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


VAL_ZIP = make_zip({f"val2017/{i:012d}.jpg": bytes([i]) * 5000 for i in range(3)})
ANN_ZIP = make_zip({
    "annotations/instances_val2017.json": json.dumps({"images": [], "annotations": []}).encode(),
    "annotations/instances_train2017.json": b"{}",
})


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Server:
    """A local HTTP server with Range support that records requests and can cut transfers."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[tuple[str, str | None]] = []
        self.cut_next_after: int | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                body = data[start:]
                if server.cut_next_after is not None:
                    body, server.cut_next_after = body[: server.cut_next_after], None
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server({"/zips/val2017.zip": VAL_ZIP, "/annotations/ann.zip": ANN_ZIP})
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch):
    monkeypatch.setattr(coco_download.time, "sleep", lambda seconds: None)


VAL = Archive("zips/val2017.zip", md5(VAL_ZIP), ("val2017",))
ANN = Archive(
    "annotations/ann.zip",
    md5(ANN_ZIP),
    ("annotations/instances_train2017.json", "annotations/instances_val2017.json"),
)


def test_extracts_layout_removes_zips_and_is_idempotent(server, tmp_path):
    assert fetch_archives(tmp_path, {"val2017": VAL, "annotations": ANN}, server.url) == [
        "val2017", "annotations"
    ]
    assert sorted(p.name for p in (tmp_path / "val2017").iterdir()) == [
        f"{i:012d}.jpg" for i in range(3)
    ]
    assert (tmp_path / "val2017" / "000000000002.jpg").read_bytes() == bytes([2]) * 5000
    assert json.loads((tmp_path / "annotations" / "instances_val2017.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations", "val2017"]

    server.requests.clear()
    assert fetch_archives(tmp_path, {"val2017": VAL, "annotations": ANN}, server.url) == []
    assert server.requests == []


def test_resumes_a_partial_download_with_a_range_request(server, tmp_path):
    half = len(VAL_ZIP) // 2
    (tmp_path / "val2017.zip.part").write_bytes(VAL_ZIP[:half])
    fetch_archives(tmp_path, {"val2017": VAL}, server.url, keep_archives=True)
    assert server.requests == [("/zips/val2017.zip", f"bytes={half}-")]
    assert (tmp_path / "val2017.zip").read_bytes() == VAL_ZIP
    assert not (tmp_path / "val2017.zip.part").exists()
    assert len(list((tmp_path / "val2017").iterdir())) == 3


def test_a_dropped_connection_is_retried_from_where_it_stopped(server, tmp_path):
    server.cut_next_after = 1000
    fetch_archives(tmp_path, {"val2017": VAL}, server.url)
    assert server.requests == [("/zips/val2017.zip", None), ("/zips/val2017.zip", "bytes=1000-")]
    assert len(list((tmp_path / "val2017").iterdir())) == 3


def test_checksum_mismatch_deletes_the_file_and_extracts_nothing(server, tmp_path):
    wrong = Archive(VAL.path, "0" * 32, VAL.marks)
    with pytest.raises(ChecksumError, match=r"val2017\.zip\.part: MD5 .* differs"):
        fetch_archives(tmp_path, {"val2017": wrong}, server.url)
    assert list(tmp_path.iterdir()) == []


def test_a_kept_zip_with_a_wrong_checksum_is_deleted(server, tmp_path):
    (tmp_path / "val2017.zip").write_bytes(VAL_ZIP[:-10])
    with pytest.raises(ChecksumError, match=r"val2017\.zip: MD5"):
        fetch_archives(tmp_path, {"val2017": VAL}, server.url)
    assert not (tmp_path / "val2017.zip").exists() and server.requests == []


def test_server_without_range_support_restarts_from_zero(tmp_path):
    source = tmp_path / "mirror" / "zips"
    source.mkdir(parents=True)
    (source / "val2017.zip").write_bytes(VAL_ZIP)
    root = tmp_path / "coco"
    root.mkdir()
    (root / "val2017.zip.part").write_bytes(b"garbage that is not a prefix")
    fetch_archives(root, {"val2017": VAL}, (tmp_path / "mirror").as_uri())
    assert len(list((root / "val2017").iterdir())) == 3


def test_existing_annotation_folder_is_merged_not_replaced(server, tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "mine.json").write_text("{}")
    fetch_archives(tmp_path, {"annotations": ANN}, server.url)
    names = sorted(p.name for p in (tmp_path / "annotations").iterdir())
    assert names == ["instances_train2017.json", "instances_val2017.json", "mine.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_unsafe_member_paths_are_refused(tmp_path):
    evil = make_zip({"../outside.txt": b"x"})
    server = Server({"/zips/evil.zip": evil})
    try:
        with pytest.raises(DownloadError, match="unsafe member path"):
            fetch_archives(tmp_path / "root", {"e": Archive("zips/evil.zip", md5(evil), ("e",))},
                           server.url)
    finally:
        server.close()
    assert not (tmp_path / "outside.txt").exists()


def test_http_errors_are_reported_with_the_url(server, tmp_path):
    missing = Archive("zips/missing.zip", "0" * 32, ("missing",))
    with pytest.raises(DownloadError, match=r"missing\.zip: server answered HTTP 404"):
        fetch_archives(tmp_path, {"missing": missing}, server.url)


def test_cli_checks_the_published_coco_checksums(server, tmp_path, capsys):
    server.files["/annotations/annotations_trainval2017.zip"] = ANN_ZIP
    code = main(["data", "coco", "--root", str(tmp_path), "--splits", "[annotations]",
                 "--base_url", server.url])
    assert code == 1
    err = capsys.readouterr().err
    assert "annotations_trainval2017.zip.part: MD5" in err
    assert "f4bbac642086de4f52a3fdda2de5fa2c" in err
    with pytest.raises(ValueError, match="unknown COCO split"):
        coco_download.coco(tmp_path, splits=["test2017"])
