"""Output names that cannot escape or collide (``utils.naming``) and the one-writer lock (``utils.lock``).

Property-based over generated names (hypothesis), plus a real second process holding,
then dying with, the lock. Time budget: a few seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affectseq.utils.lock import LOCK_FILE, LockHeld, hold_lock, read_holder
from affectseq.utils.naming import MAX_NAME_BYTES, display_name, safe_name

# Any text a file name can hold on Linux: arbitrary code points, and undecodable bytes
# (surrogate-escaped by Python), plus the awkward cases users hit.
names = st.one_of(
    st.text(min_size=0, max_size=300),
    st.binary(min_size=1, max_size=260).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_"))
    .map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.sampled_from([".", "..", "...", "-rf", "--help", "a$_b_$c", "clip[1]", "100%", "it's \"q\"", " x ",
                     "con", "NUL.txt", "x" * 245, "é" * 200, "😀" * 80, "a/../b", "\\..\\x", "a:b"]),
)
_SCRATCH = Path(tempfile.mkdtemp(prefix="affectseq-names-"))


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(names)
def test_safe_name_is_one_bounded_harmless_component(text: str) -> None:
    name = safe_name(text)
    assert name and name not in (".", "..") and not name.startswith((".", "-"))
    assert "/" not in name and "\\" not in name and "\0" not in name
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES  # encodable: no lone surrogates left
    assert name == safe_name(text)  # deterministic
    assert name == safe_name(name)  # already safe names are kept as they are
    # The filesystem agrees: a folder of that name is a direct child of its parent.
    folder = _SCRATCH / name
    folder.mkdir(exist_ok=True)
    assert folder.resolve().parent == _SCRATCH.resolve()
    assert display_name(text).isprintable()  # one printable line for messages, titles and bars


@settings(max_examples=300, deadline=None, database=None)
@given(names, names)
def test_different_texts_get_different_names(a: str, b: str) -> None:
    if a != b:
        assert safe_name(a) != safe_name(b)


def test_safe_names_of_known_cases() -> None:
    assert safe_name("good") == "good" and safe_name("clip[1]") == "clip[1]" and safe_name("a$_b_$c") == "a$_b_$c"
    assert safe_name(".").startswith("_-") and safe_name("..").startswith("__-")
    assert safe_name("-rf").startswith("_rf-") and safe_name("a/b").startswith("a_b-")
    long = safe_name("x" * 245)
    assert long.startswith("x" * 80) and len(long) <= MAX_NAME_BYTES
    assert safe_name("x" * 245) != safe_name("x" * 244)  # the hash tells long names apart


_HOLDER = textwrap.dedent("""
    import sys, time
    from affectseq.utils.lock import hold_lock
    with hold_lock(sys.argv[1], "test holder"):
        print("held", flush=True)
        time.sleep(120)
""")


def _start_holder(lock: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_fails_with_the_first_ones_pid(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_FILE
    proc = _start_holder(lock)
    try:
        with pytest.raises(LockHeld) as err:
            with hold_lock(lock, "second"):
                pass
        message = str(err.value)
        assert f"pid {proc.pid}" in message and "test holder" in message and str(tmp_path) in message
        assert "\n" not in message
    finally:
        proc.terminate()
        proc.wait(30)
    with hold_lock(lock, "third"):  # released by the holder's clean exit... or by its death
        assert read_holder(lock)["pid"] == os.getpid()
    assert not lock.exists()  # removed on release


def test_a_lock_left_by_kill_9_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lock = tmp_path / LOCK_FILE
    proc = _start_holder(lock)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert read_holder(lock)["pid"] == proc.pid  # the dead run's record is still there
    with caplog.at_level(logging.WARNING), hold_lock(lock, "after the crash"):
        assert read_holder(lock)["purpose"] == "after the crash"
    assert any(f"pid {proc.pid}" in r.getMessage() and "taking over" in r.getMessage() for r in caplog.records)


def test_waiting_for_the_lock_gets_it_when_the_holder_leaves(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_FILE
    proc = _start_holder(lock)
    try:
        with pytest.raises(LockHeld):
            with hold_lock(lock, wait_sec=0.3, poll_sec=0.1):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    with hold_lock(lock, wait_sec=5, poll_sec=0.1):
        pass
