"""Inference: interpolation baselines, seam-free tiled network prediction, batches of files.

- :mod:`sciSR.infer.interpolate` — nearest / linear / cubic B-spline on the FOV-preserving grid.
- :mod:`sciSR.infer.tiled` — ``predict_tiled``: memory-bounded, tiling-independent network prediction.
- :mod:`sciSR.infer.receptive_field` — measured receptive-field radius that sizes the tile halo.
- :mod:`sciSR.infer.precision` — ``"auto"``/fp32/bf16/fp16: resolution, refusals, autocast with an fp32 last layer.
- :mod:`sciSR.infer.predict` — channels, 2D models on volumes (plane by plane), scale planning.
- :mod:`sciSR.infer.orientations` — through the plane, both families of planes and their Fourier fusion.
- :mod:`sciSR.infer.cost` — rough run-time estimates (FLOPs per output voxel over a throughput) for the guard.
- :mod:`sciSR.infer.batch` — one job per file, on a Dask cluster or in a loop.
"""
