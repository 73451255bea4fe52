"""MTCNN weights: the .npz cache holds exactly the arrays of the package's joblib files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectseq.faces import mtcnn_nets


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    mtcnn_nets.load_tf_weights.cache_clear()
    yield tmp_path / "affectseq" / "mtcnn"
    mtcnn_nets.load_tf_weights.cache_clear()


def test_cached_weights_equal_the_originals(fresh_cache: Path) -> None:
    import joblib

    original = joblib.load(mtcnn_nets.mtcnn_weights_dir() / "onet.lz4")
    first = mtcnn_nets.load_tf_weights("onet")  # reads the .lz4 and writes the cache
    assert [p.name.split("-")[0] for p in fresh_cache.glob("*.npz")] == ["onet"]
    mtcnn_nets.load_tf_weights.cache_clear()
    cached = mtcnn_nets.load_tf_weights("onet")  # from the .npz
    assert len(cached) == len(original) == len(first)
    for a, b in zip(cached, original):
        assert a.dtype == np.float32 and np.array_equal(a, np.asarray(b, np.float32))


def test_a_corrupt_cache_file_falls_back_to_the_original(fresh_cache: Path) -> None:
    path = mtcnn_nets._weights_cache(mtcnn_nets.mtcnn_weights_dir() / "pnet.lz4")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    arrays = mtcnn_nets.load_tf_weights("pnet")
    assert len(arrays) > 0 and all(a.dtype == np.float32 for a in arrays)
