"""``affectseq.utils.lazy.lazy_exports``: the subpackages' lazy public names."""

from __future__ import annotations

import pytest


def test_predict_and_features_export_lazily_and_refuse_unknown_names() -> None:
    import affectseq.features as features
    import affectseq.predict as predict
    from affectseq.predict.engines import predict_batch

    assert predict.predict_batch is predict_batch
    assert "predict_batch" in vars(predict)  # kept after the first access
    assert dir(predict) == sorted(predict.__all__) and "create_encoder" in dir(features)
    with pytest.raises(AttributeError, match="'affectseq.predict' has no attribute 'nope'"):
        predict.nope  # noqa: B018
