"""Stage 4, modelfile: every affectseq model file, written and read with one header schema.

Tensors and checked headers only: no model class is known here (the networks are built from a
header by :mod:`affectseq.models.factory`, the one factory), and nothing of ``affectseq.features``
is imported (the features stage imports this one).

Model files are ``.safetensors``: tensors plus a JSON header under the metadata key
``affectseq``. Two kinds share the schema (:mod:`affectseq.modelfile.schema`, version 2):

* **frame model** (``format: affectseq.frame_model``, :mod:`affectseq.modelfile.frame`):
  a frame model's tensors -- encoder + task heads;
* **sequence model** (``format: affectseq.sequence_model``, :mod:`affectseq.modelfile.sequence`):
  the temporal network's tensors ``temporal.*`` plus, by default, the frame model that made
  its training features embedded byte for byte (``frame_file``, sha256-checked), so one file
  runs ``affectseq predict`` on raw video.

Common header fields: ``format``, ``version``, ``affectseq_version``, ``encoder`` (the data
contract, an ``EncoderSpec``), ``face`` (``framing`` and ``crop_size`` of the faces it
expects), ``tasks``, ``expr_classes``, ``va_range``, ``meta`` (free training information).
Frame models add ``num_aus``, ``dropout``; sequence models add ``input_dim``, ``heads``,
``model_config`` (``{arch, args, mask_channel}``: a registered temporal architecture and its own
arguments), ``mode`` (once), ``window``, ``fps`` (frame rate of the training features, null
when unknown), ``window_sec`` (``window / fps``) and ``frame_model``. Headers are untrusted
input: each is schema-checked before use and a bad one is a one-line ``InputError``.
Version-1 files (frame models and bundles written before the schema, the shipped
``fer2013-v1`` and ``default`` weights among them) are read through ``legacy.upgrade_v1``.
"""
