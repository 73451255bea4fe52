"""``torch_threads``: a thread count for a block, the caller's restored after it (even on error)."""

from __future__ import annotations

import pytest
import torch

from affectseq.utils.threads import torch_threads


def test_sets_then_restores_the_callers_thread_count() -> None:
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with torch_threads(wanted):
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(wanted):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("n", [None, 0])
def test_no_count_leaves_it_alone(n: int | None) -> None:
    before = torch.get_num_threads()
    with torch_threads(n):
        assert torch.get_num_threads() == before
