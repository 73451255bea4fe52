"""Names derived from users' file names: safe as one folder name, printable on any console.

Input file names can hold anything a filesystem allows: ``$``, ``[]``, ``%``,
quotes, emoji, undecodable bytes (Python shows them as lone surrogates), 250-byte
names, leading dashes, even ``..`` as a stem. :func:`safe_name` turns such a text
into a single path component that cannot escape its parent folder, cannot be
mistaken for an option or a hidden file, and stays well under the 255-byte limit
of common filesystems; :func:`display_name` gives the text to show to a person.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Room for a prefix or suffix (a temporary name, "-<hash>") below the usual 255-byte limit.
MAX_NAME_BYTES = 96
HASH_CHARS = 8
# Path separators, NUL/control characters, and the characters Windows and SMB/exFAT mounts reject.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"COM{i}" for i in range(1, 10)] + [f"LPT{i}" for i in range(1, 10)]
)


def _as_bytes(text: str) -> bytes:
    # surrogateescape: the original bytes of an undecodable file name, so distinct names hash apart;
    # surrogatepass for lone surrogates that did not come from a file name.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def short_hash(text: str, chars: int = HASH_CHARS) -> str:
    """The first ``chars`` hex digits of the SHA-256 of ``text`` (any str, lone surrogates included)."""
    return hashlib.sha256(_as_bytes(text)).hexdigest()[:chars]


def display_name(text: str) -> str:
    """``text`` as one printable line: undecodable bytes become U+FFFD, other unprintable characters ``?``.

    Unprintable: control characters (a newline would split a one-line message),
    line/paragraph separators, bidi overrides, unusual spaces.
    """
    decoded = _as_bytes(text).decode("utf-8", "replace")
    return decoded if decoded.isprintable() else "".join(ch if ch.isprintable() else "?" for ch in decoded)


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits ``max_bytes`` (never splits a character)."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def safe_name(text: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A single, safe path component for ``text`` (e.g. a video's file stem).

    Unchanged when ``text`` is already safe. Otherwise unsafe characters become
    ``_`` (path separators, unprintable characters, ``:*?"<>|``), leading ``.``/``-``
    become ``_`` (never ``.``, ``..``, a hidden name or an option), trailing dots
    and spaces go, and the result is cut to ``max_bytes`` UTF-8 bytes; any such
    change appends ``-`` and a hash of the original text, so two different texts
    that clean up alike still get different names. Deterministic.
    """
    if max_bytes < HASH_CHARS + 2:
        raise ValueError(f"max_bytes must be at least {HASH_CHARS + 2}")
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", display_name(text))).strip(" ")
    cleaned = re.sub(r"^[.\-]+", lambda m: "_" * len(m.group()), cleaned).rstrip(". ")
    if cleaned.split(".")[0].upper() in _WINDOWS_RESERVED:
        cleaned = "_" + cleaned
    if cleaned and cleaned == text and len(_as_bytes(text)) <= max_bytes:
        return text
    stem = _truncate_utf8(cleaned or "video", max_bytes - HASH_CHARS - 1).rstrip(". ")
    return f"{stem or 'video'}-{short_hash(text)}"

