"""Training: one Lightning engine for a CPU, one GPU, many GPUs and many nodes, from the same recipe.

>>> import sciSR
>>> result = sciSR.train("configs/ct_x2.yaml", overrides=["train.max_steps=200"])
>>> result.model_path, result.metrics["val_psnr"]

Entry points: ``sciSR.train(config, overrides=..., resume=...)`` (this package is callable; it is
:func:`run`, which returns :class:`TrainResult`), :func:`load_config` (recipe + overrides, validated),
``scisr train CONFIG [--set key=value ...] [--resume CKPT]`` and
``python -m sciSR.train CONFIG [key=value ...] [--resume CKPT]`` (the form torchrun launches).

Scaling out needs no code or recipe change, only settings (``train.devices``, ``train.num_nodes``,
``train.strategy``; ``train.precision: auto`` picks bf16/fp16 mixed precision on GPUs, fp32 on CPUs):

- One GPU: ``python -m sciSR.train configs/knee_mri_throughplane_x4.yaml``.
- All GPUs of one machine, Lightning launching the processes::

      python -m sciSR.train configs/knee_mri_throughplane_x4.yaml train.devices=-1 train.strategy=ddp

- The same with torchrun (each process runs the recipe; Lightning reads the torchrun environment)::

      torchrun --standalone --nproc_per_node=4 -m sciSR.train configs/ct_x2.yaml \\
          train.devices=4 train.strategy=ddp

- Several nodes (run on every node; ``--node_rank`` 0..N−1, the same rendezvous address)::

      torchrun --nnodes=2 --nproc_per_node=8 --node_rank=$NODE_RANK \\
          --rdzv_backend=c10d --rdzv_endpoint=$MASTER_HOST:29500 \\
          -m sciSR.train configs/ct_x2.yaml train.devices=8 train.num_nodes=2 train.strategy=ddp

  Under SLURM, ``srun python -m sciSR.train ... train.devices=8 train.num_nodes=2 train.strategy=ddp``
  (Lightning reads the SLURM environment). CPU-only DDP uses the gloo backend
  (``train.accelerator=cpu``).

Each rank draws its own patches; gradients are averaged, so all ranks hold identical weights. The
batch size is per process (effective batch = ``data.batch_size × devices × num_nodes``). Checkpoints and
the model file are written by global rank 0, atomically. Resume with
``python -m sciSR.train CONFIG --resume runs/<name>/checkpoints/last.ckpt``.
"""

import sys
import types
from typing import Any

from sciSR.train.config import DEFAULTS, load_config
from sciSR.train.engine import TrainResult, run

__all__ = ["DEFAULTS", "TrainResult", "load_config", "run"]


class _CallableModule(types.ModuleType):
    """Lets ``sciSR.train(config)`` (the public API name) and the ``sciSR.train`` package coexist."""

    def __call__(self, *args: Any, **kwargs: Any) -> TrainResult:
        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
