"""Scale: the Ray engine for ``extract``/``predict``, local video-parallel prediction, DDP sequence training.

Modules (imported on demand; Ray only inside :mod:`.ray_engine` functions):

* :mod:`.ray_engine` -- ``extract_with_ray``, ``predict_with_ray``, ``RayOptions``, ``ray_session``;
* :mod:`.predict_shards` -- ``predict_parallel`` (local ``--workers N``), ``ModelRequest``, shard runner;
* :mod:`.shards` -- balanced video shards;
* :mod:`.ddp_sequence` -- ``train_sequence_distributed`` (DDP utilities live in ``affectseq.training.distributed``).
"""
