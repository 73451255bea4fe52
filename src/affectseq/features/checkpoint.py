"""Frame-model files, as the features stage has always named them: re-exported from :mod:`affectseq.modelfile.frame`.

The model-file layer (:mod:`affectseq.modelfile`) writes and reads every affectseq model
file with one header schema; these names stay importable from here for existing code.
"""

from __future__ import annotations

from affectseq.modelfile.container import read_safetensors_metadata  # noqa: F401 (re-exported)
from affectseq.modelfile.frame import load_frame_model, read_frame_model_header, save_frame_model  # noqa: F401
