"""Scale: the Ray engine for ``extract``/``predict``, local video-parallel prediction, DDP training of both stages.

Modules (imported on demand; Ray only inside :mod:`.ray_engine` functions):

* :mod:`.ray_engine` -- ``extract_with_ray``, ``RayEngine`` (predict's ``ray`` engine; ``predict_with_ray``),
  ``RayOptions``, ``ray_session``;
* :mod:`.predict_shards` -- ``WorkersEngine`` (predict's ``workers`` engine, ``--workers N``;
  ``predict_parallel``), ``ModelRequest``, shard runner;
* :mod:`.shards` -- balanced video shards;
* :mod:`.ddp_frames` -- ``train_frames_distributed`` (stage 1, the frame CNN);
* :mod:`.ddp_sequence` -- ``train_sequence_distributed`` (stage 2); both launch ranks and call the one
  training loop of :mod:`affectseq.training` with a DDP context (utilities in ``affectseq.training.distributed``).
"""
