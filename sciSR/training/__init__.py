"""Training: one Lightning engine for a CPU, one GPU, many GPUs and many nodes, from the same recipe.

>>> import sciSR.training
>>> sciSR.training.list_recipes()[:2]
['ct_x2', 'fusion_multistack_x4']
>>> result = sciSR.training.run("ct_x2", overrides=["train.max_steps=200"])
>>> result.model_path, result.metrics["val_psnr"]

Entry points: :func:`run` (also ``sciSR.train``; returns :class:`TrainResult`, reports progress through
``on_metrics`` and ends early when ``stop`` is set), :func:`load_config` (recipe + overrides, validated),
:func:`list_recipes` / :func:`recipe_path` (the recipes installed with sciSR, by name),
``scisr train RECIPE [--set key=value ...] [--resume CKPT]`` (``scisr train --list`` names the recipes) and
``python -m sciSR.training RECIPE [key=value ...] [--resume CKPT]`` (the form torchrun launches). A recipe is
the name of an installed recipe (``ct_x2``, ``shipped/mri-x2``) or the path of a YAML file.

Scaling out needs no code or recipe change, only settings (``train.devices``, ``train.num_nodes``,
``train.strategy``; ``train.precision: auto`` picks bf16/fp16 mixed precision on GPUs, bf16 on CPUs with
AVX512-BF16/AMX, fp32 on other CPUs):

- One GPU: ``python -m sciSR.training knee_mri_throughplane_x4``.
- All GPUs of one machine, Lightning launching the processes::

      python -m sciSR.training knee_mri_throughplane_x4 train.devices=-1 train.strategy=ddp

- The same with torchrun (each process runs the recipe; Lightning reads the torchrun environment)::

      torchrun --standalone --nproc_per_node=4 -m sciSR.training ct_x2 train.devices=4 train.strategy=ddp

- Several nodes (run on every node; ``--node_rank`` 0..N−1, the same rendezvous address)::

      torchrun --nnodes=2 --nproc_per_node=8 --node_rank=$NODE_RANK \\
          --rdzv_backend=c10d --rdzv_endpoint=$MASTER_HOST:29500 \\
          -m sciSR.training ct_x2 train.devices=8 train.num_nodes=2 train.strategy=ddp

  Under SLURM, ``srun python -m sciSR.training ... train.devices=8 train.num_nodes=2 train.strategy=ddp``
  (Lightning reads the SLURM environment). CPU-only DDP uses the gloo backend
  (``train.accelerator=cpu``).

Each rank draws its own patches; gradients are averaged, so all ranks hold identical weights. The
batch size is per process (effective batch = ``data.batch_size × devices × num_nodes``). Checkpoints and
the model file are written by global rank 0, atomically. Resume with
``python -m sciSR.training RECIPE --resume runs/<name>/checkpoints/last.ckpt``.
"""

import importlib
from typing import Any

from sciSR.training.config import DEFAULTS, load_config
from sciSR.training.recipes import list_recipes, recipe_path

# The engine imports Lightning (seconds): loaded on first use, so listing and checking recipes stay quick.
_ENGINE = ("TrainResult", "run")


def __getattr__(name: str) -> Any:
    if name in _ENGINE:
        return getattr(importlib.import_module("sciSR.training.engine"), name)
    raise AttributeError(f"module 'sciSR.training' has no attribute {name!r}")


__all__ = ["DEFAULTS", "TrainResult", "list_recipes", "load_config", "recipe_path", "run"]
