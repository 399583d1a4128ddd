"""``neo data coco``: download COCO 2017 with resume, verify MD5 sums, extract atomically."""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from neo.data.problems import DatasetError

CHUNK_BYTES = 1 << 20
RETRIES = 3
TRANSIENT_HTTP = (408, 429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Archive:
    """One downloadable zip.

    Attributes:
        path: location below the base URL, e.g. ``zips/val2017.zip``.
        md5: expected MD5 hex digest of the whole zip.
        marks: paths relative to the dataset root whose presence means "already extracted".
    """

    path: str
    md5: str
    marks: tuple[str, ...]

    @property
    def filename(self) -> str:
        """The zip's file name."""
        return self.path.rsplit("/", 1)[-1]


# MD5 sums published with the official COCO 2017 zips; the same values are listed in, e.g.,
# PaddlePaddle/PaddleDetection ppdet/utils/download.py (DATASETS["coco"]) and several
# independent download scripts that check them with `md5sum -c`.
COCO_2017: dict[str, Archive] = {
    "train2017": Archive("zips/train2017.zip", "cced6f7f71b7629ddf16f17bbcfab6b2", ("train2017",)),
    "val2017": Archive("zips/val2017.zip", "442b8da7639aecaf257c1dceb8ba8c80", ("val2017",)),
    "annotations": Archive(
        "annotations/annotations_trainval2017.zip",
        "f4bbac642086de4f52a3fdda2de5fa2c",
        ("annotations/instances_train2017.json", "annotations/instances_val2017.json"),
    ),
}


class DownloadError(DatasetError):
    """A file could not be downloaded, or its content is wrong."""


class ChecksumError(DownloadError):
    """A downloaded file does not have the published checksum (it has been deleted)."""


def coco(
    root: Path = Path("data/coco"),
    splits: list[str] = ["train2017", "val2017", "annotations"],  # noqa: B006
    base_url: str = "http://images.cocodataset.org",
    keep_archives: bool = False,
) -> None:
    """Download and extract COCO 2017 (about 19 GB train, 0.8 GB val, 0.25 GB annotations).

    Interrupted downloads resume from their ``.part`` file; every zip is checked against its
    published MD5 sum and extracted through a temporary folder, so a finished split is never
    half-written. Splits already extracted are skipped.

    Args:
        root: dataset folder; receives ``train2017/``, ``val2017/`` and ``annotations/``.
        splits: any of ``train2017``, ``val2017``, ``annotations``.
        base_url: server holding ``zips/`` and ``annotations/`` (a mirror, or a ``file://`` URL).
        keep_archives: keep the zip files after extraction.
    """
    unknown = [s for s in splits if s not in COCO_2017]
    if unknown:
        raise ValueError(f"unknown COCO split(s) {unknown}; choose from {sorted(COCO_2017)}")
    fetch_archives(Path(root), {s: COCO_2017[s] for s in splits}, base_url, keep_archives)


def fetch_archives(
    root: Path, archives: Mapping[str, Archive], base_url: str, keep_archives: bool = False
) -> list[str]:
    """Download, verify and extract each archive unless its marks already exist.

    Args:
        root: dataset folder.
        archives: name -> archive description (with its checksum).
        base_url: URL prefix of every ``Archive.path``.
        keep_archives: keep the zip files after extraction.

    Returns:
        Names of the archives that were extracted now (not the skipped ones).
    """
    root.mkdir(parents=True, exist_ok=True)
    extracted = []
    for name, archive in archives.items():
        if all((root / mark).exists() for mark in archive.marks):
            _say(f"{name}: already in {root}, skipped")
            continue
        zip_path = root / archive.filename
        download(f"{base_url.rstrip('/')}/{archive.path}", zip_path, archive.md5)
        extract_atomically(zip_path, root)
        missing = [m for m in archive.marks if not (root / m).exists()]
        if missing:
            raise DownloadError(f"{zip_path}: extracted, but {missing} are not in the archive")
        if not keep_archives:
            zip_path.unlink()
        extracted.append(name)
        _say(f"{name}: ready in {root}")
    return extracted


def download(url: str, dest: Path, md5: str) -> Path:
    """Fetch ``url`` to ``dest`` through ``dest.part`` (resumed with an HTTP Range request).

    A complete ``dest`` with the right checksum is reused. Transient network errors are retried
    from where the transfer stopped.

    Raises:
        ChecksumError: the finished file has another MD5 (both ``dest`` and the part are deleted).
        DownloadError: the server answers with an error or the connection keeps failing.
    """
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        _verify(dest, md5, _md5_of(dest))
        return dest
    for attempt in range(1, RETRIES + 1):
        try:
            digest = _transfer(url, part)
            break
        except (urllib.error.URLError, HTTPException, OSError, TimeoutError) as e:
            if isinstance(e, urllib.error.HTTPError) and e.code not in TRANSIENT_HTTP:
                raise DownloadError(f"{url}: server answered HTTP {e.code} {e.reason}") from None
            if attempt == RETRIES or url.startswith("file:"):
                raise DownloadError(
                    f"{url}: download failed after {RETRIES} attempts ({e}); run the command "
                    f"again to resume from {part}"
                ) from None
            _say(f"{url}: {e}; retrying ({attempt}/{RETRIES})")
            time.sleep(2.0 * attempt)
    _verify(part, md5, digest)
    part.replace(dest)
    return dest


def _transfer(url: str, part: Path) -> str:
    """Appends the missing bytes to ``part``; returns the MD5 of the whole file."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # the part already holds the whole file
            return _md5_of(part).hexdigest()
        raise
    with response:
        status = getattr(response, "status", None) or response.getcode()
        resumed = offset > 0 and status == 206 and _range_start(response) == offset
        digest = _md5_of(part) if resumed else hashlib.md5()
        total = response.headers.get("Content-Length")
        total_bytes = int(total) + (offset if resumed else 0) if total else None
        if offset and not resumed:
            _say(f"{url}: the server did not resume; starting again")
        done = offset if resumed else 0
        _say(
            f"{url}: {'resuming at ' + _size(done) if resumed else 'downloading'}"
            + (f" ({_size(total_bytes)})" if total_bytes else "")
        )
        with open(part, "ab" if resumed else "wb") as f:
            reported = time.monotonic()
            while chunk := response.read(CHUNK_BYTES):
                f.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if time.monotonic() - reported > 10:
                    reported = time.monotonic()
                    share = f" {100 * done / total_bytes:.1f}%" if total_bytes else ""
                    _say(f"  {part.name}: {_size(done)}{share}")
        if total_bytes is not None and done < total_bytes:
            raise HTTPException(f"connection closed after {done} of {total_bytes} bytes")
    return digest.hexdigest()


def _range_start(response: object) -> int | None:
    content_range = response.headers.get("Content-Range", "")  # "bytes 100-999/1000"
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _md5_of(path: Path) -> hashlib._Hash:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest


def _verify(path: Path, expected: str, digest: hashlib._Hash | str) -> None:
    actual = digest if isinstance(digest, str) else digest.hexdigest()
    if actual != expected.lower():
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"{path}: MD5 {actual} differs from the published {expected}; the file was deleted "
            "(corrupt or truncated download, or a mirror serving other content). Run again."
        )


def extract_atomically(zip_path: Path, root: Path) -> None:
    """Unzip into a temporary folder inside ``root``, then move each top-level entry into place.

    Entries that already exist are merged file by file; existing files are kept.

    Raises:
        DownloadError: the zip is unreadable or has members outside the target folder.
    """
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for member in zf.namelist():
                parts = Path(member).parts
                if Path(member).is_absolute() or ".." in parts:
                    raise DownloadError(f"{zip_path}: unsafe member path {member!r}")
            with tempfile.TemporaryDirectory(prefix=f".{zip_path.stem}-", dir=root) as tmp:
                zf.extractall(tmp)
                for entry in sorted(Path(tmp).iterdir()):
                    _move_merge(entry, root / entry.name)
    except zipfile.BadZipFile as e:
        raise DownloadError(f"{zip_path}: not a readable zip file ({e})") from None


def _move_merge(src: Path, dst: Path) -> None:
    if not dst.exists():
        src.replace(dst)
    elif src.is_dir() and dst.is_dir():
        for child in sorted(src.iterdir()):
            _move_merge(child, dst / child.name)
    elif src.is_dir() or dst.is_dir():
        raise DownloadError(f"{dst}: exists and is not the same kind (file/folder) as in the zip")


def _size(num_bytes: int | None) -> str:
    return f"{(num_bytes or 0) / 1e9:.2f} GB" if (num_bytes or 0) >= 1e8 else f"{num_bytes} B"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
