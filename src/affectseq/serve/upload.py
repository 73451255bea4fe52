"""Stream a multipart upload to disk, enforcing the size limit while the bytes arrive.

Starlette's own form parser spools the whole file before the handler can look
at it, so an over-limit upload would fill the disk first; this parser writes
the ``video`` part straight to a temporary file under the server's data folder
and stops at the first byte over the limit. Text fields are small and kept in
memory. The client's file name is returned as display text only: it is never
used to build a path.
"""

from __future__ import annotations

import errno
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, BinaryIO

from python_multipart import MultipartParser
from python_multipart.multipart import MultipartState, parse_options_header

from affectseq.utils import naming

FILE_FIELD = "video"
MAX_FIELD_BYTES = 1024      # option values are short numbers and booleans
MAX_PARTS = 16
MAX_NAME_CHARS = 255


class UploadError(Exception):
    """A rejected upload: ``status`` is the HTTP status to answer with, ``message`` one line for the user."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def storage_error(err: OSError) -> UploadError:
    """The answer to a failed write of an upload: 507 for a full disk or quota, 500 otherwise; one line."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return UploadError(507, "the server has no disk space left for this upload; nothing was kept")
    return UploadError(500, f"the server could not store the upload ({err.strerror or type(err).__name__}); "
                            "nothing was kept")


@dataclass
class Upload:
    """A complete upload: the file on disk, its display name, its size and the text fields."""

    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


def display_name(raw: str) -> str:
    """The client's file name as display text: its last path component, one printable line, bounded."""
    name = naming.display_name(raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:MAX_NAME_CHARS] or "upload"


class _Receiver:
    """python-multipart callbacks: route the file part to disk and text parts to memory."""

    def __init__(self, tmp_dir: Path, max_bytes: int):
        self.tmp_dir = tmp_dir
        self.max_bytes = max_bytes
        self.fields: dict[str, str] = {}
        self.file: BinaryIO | None = None
        self.file_path: Path | None = None
        self.filename = ""
        self.size = 0
        self.parts = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._text: bytearray | None = None

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise UploadError(400, f"too many form fields (at most {MAX_PARTS})")
        self._disposition, self._name, self._text = b"", "", None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._name != FILE_FIELD and b"filename" in options:  # e.g. the usual name "file"
            sent = naming.display_name(self._name)[:40]
            raise UploadError(400, f"no '{FILE_FIELD}' file in the form: send the video in the form field "
                                   f"'{FILE_FIELD}' (this form sent a file in {sent!r})")
        if self._name == FILE_FIELD:
            if self.file is not None:
                raise UploadError(400, f"send one '{FILE_FIELD}' file per job")
            self.filename = display_name(options.get(b"filename", b"").decode("utf-8", "replace"))
            # A random name in our own folder: nothing the client sends becomes part of a path.
            self.file_path = self.tmp_dir / f"{secrets.token_hex(12)}.partial"
            self.file = open(self.file_path, "xb")
        else:
            self._text = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._name == FILE_FIELD and self.file is not None and self._text is None:
            self.size += len(chunk)
            if self.size > self.max_bytes:
                raise UploadError(413, f"upload larger than the limit of {self.max_bytes / 2**20:g} MB "
                                       "(start the server with a larger --max-upload-mb)")
            try:
                self.file.write(chunk)
            except OSError as err:
                raise storage_error(err) from None
        elif self._text is not None:
            if len(self._text) + len(chunk) > MAX_FIELD_BYTES:
                raise UploadError(400, f"form field {self._name!r} is too long")
            self._text.extend(chunk)

    def on_part_end(self) -> None:
        if self._text is not None:
            self.fields[self._name] = self._text.decode("utf-8", "replace")
            self._text = None

    def callbacks(self) -> dict:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished", "on_part_data", "on_part_end")}

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.file_path is not None:
            self.file_path.unlink(missing_ok=True)


def _check_complete(parser: MultipartParser, received: int, content_length: str | None) -> None:
    """UploadError 400 for a body cut short: fewer bytes than its Content-Length, or no closing boundary."""
    if content_length and content_length.isdigit() and received < int(content_length):
        raise UploadError(400, f"the body ended after {received} of the {int(content_length)} bytes announced "
                               "(an interrupted upload); nothing was kept")
    if parser.state != MultipartState.END:
        raise UploadError(400, "the multipart body ended before its closing boundary (an interrupted upload); "
                               "nothing was kept")


async def receive_upload(
    content_type: str, content_length: str | None, chunks: AsyncIterator[bytes], tmp_dir: Path, max_bytes: int
) -> Upload:
    """Parse a ``multipart/form-data`` body from ``chunks`` into an :class:`Upload`.

    Raises :class:`UploadError` (413 over the limit -- at once when the declared
    length already exceeds it --, 400 for a malformed body or a missing file);
    any failure, a client disconnect included, deletes the partial file.
    """
    kind, params = parse_options_header(content_type or "")
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(400, f"send the video as multipart/form-data with a '{FILE_FIELD}' file field")
    # Form fields and multipart framing add a few KB to the file itself.
    if content_length and content_length.isdigit() and int(content_length) > max_bytes + 64 * 1024:
        raise UploadError(413, f"upload larger than the limit of {max_bytes / 2**20:g} MB "
                               "(start the server with a larger --max-upload-mb)")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(tmp_dir, max_bytes)
    parser = MultipartParser(params[b"boundary"], receiver.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            parser.write(chunk)
        parser.finalize()
        _check_complete(parser, received, content_length)
        if receiver.file is None or receiver.file_path is None:
            raise UploadError(400, f"no '{FILE_FIELD}' file in the form")
        try:
            receiver.file.flush()
            os.fsync(receiver.file.fileno())
            receiver.file.close()
        except OSError as err:
            raise storage_error(err) from None
    except UploadError:
        receiver.discard()
        raise
    except BaseException as err:  # a disconnect or a parse error: leave nothing behind
        receiver.discard()
        if isinstance(err, Exception) and type(err).__module__.startswith("python_multipart"):
            raise UploadError(400, f"malformed multipart body ({err})") from None
        raise
    if receiver.size == 0:
        receiver.discard()
        raise UploadError(400, "the uploaded file is empty")
    return Upload(receiver.file_path, receiver.filename, receiver.size, receiver.fields)
