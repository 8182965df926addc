"""The typed contract of a network: what it takes, what it produces, and how inference may run it.

Every registry network carries a frozen :class:`ModelSpec` as ``model.spec``; a model card stores it as
``card["spec"]``. Inference code asks :func:`spec_of`, which also derives a spec for a user's plain
``nn.Module`` from its attributes, instead of probing scattered attributes.

>>> from sciSR.models import create_model, spec_of
>>> spec_of(create_model("swinir", scale=2, window_size=4, depths=(2,), num_heads=(2,), embed_dim=8)).window_multiple
4
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from sciSR.errors import SciSRError
from sciSR.geometry import normalize_scale

KINDS = ("pre", "post", "progressive", "fusion", "reference", "discriminator")
"""Values of :attr:`ModelSpec.kind`."""

INPUTS = ("image", "stacks", "reference")
"""Values of :attr:`ModelSpec.inputs`."""

PRECISIONS = ("fp32", "bf16", "fp16")
"""Values of :attr:`ModelSpec.precisions`."""

# Attributes a plain nn.Module may set to declare what a zoo network keeps in its spec.
_DECLARABLE = ("receptive_field", "global_pooling", "window_multiple", "input_on_output_grid")


@dataclass(frozen=True)
class ModelSpec:
    """What a network is and what inference may assume about it.

    Attributes
    ----------
    arch : str
        Registry name (``"edsr-baseline"``), or the class name of a user's network.
    scale : tuple of int
        Upscaling factor per model axis (all ones for a discriminator; nominal for ``inputs="stacks"``).
    spatial_dims : int
        2 (``(B, C, H, W)``) or 3 (``(B, C, D, H, W)``).
    in_channels, out_channels : int
        Channels of one input image (one stack for ``inputs="stacks"``) and of the output.
    kind : str
        ``"pre"`` (interpolates first, then refines), ``"post"`` (upsamples at the end),
        ``"progressive"`` (×2 pyramid levels), ``"fusion"``, ``"reference"`` or ``"discriminator"``.
    inputs : str
        ``"image"``: ``forward(x)``; ``"stacks"``: several LR stacks already resampled onto the output
        grid, as channel groups ``(B, N·C, *S·s)``; ``"reference"``: ``forward(x, ref)`` with a HR
        reference on the output grid.
    input_on_output_grid : bool
        The input already lies on the output grid, so tiled inference runs it as a scale-1 network.
    receptive_field : tuple of int or None
        Radius per axis in input voxels that an output voxel depends on; None: measured on first use
        (:func:`sciSR.infer.receptive_field.receptive_field_radius`). With ``global_pooling`` it is the
        cap of the tile blending.
    global_pooling : bool
        An output voxel depends on the whole input (global channel attention, non-local attention),
        so tiled inference only approximates whole-image inference.
    window_multiple : int
        The network pads its input internally to a multiple of this (1: none); tiles aligned to it
        avoid the padding.
    precisions : tuple of str
        Compute precisions the network may run in: among ``"fp32"``, ``"bf16"``, ``"fp16"``.
    degradation : str or None
        Degradation family a trained model was trained for (``"bicubic"``, ``"kspace"``,
        ``"thick_slice"``, ``"ct"``, ``"telescope"``, ...); None for an untrained network.

    Raises
    ------
    SciSRError
        On construction, for a value outside the ranges above. Lists are accepted and stored as tuples,
        an int ``scale`` or ``receptive_field`` applies to every axis.
    """

    arch: str
    scale: tuple[int, ...]
    spatial_dims: int
    in_channels: int
    out_channels: int
    kind: str = "post"
    inputs: str = "image"
    input_on_output_grid: bool = False
    receptive_field: tuple[int, ...] | None = None
    global_pooling: bool = False
    window_multiple: int = 1
    precisions: tuple[str, ...] = PRECISIONS
    degradation: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or not self.arch:
            raise SciSRError(f"model spec arch must be a non-empty string, got {self.arch!r}")
        if self.spatial_dims not in (2, 3) or isinstance(self.spatial_dims, bool):
            raise SciSRError(f"model spec spatial_dims must be 2 or 3, got {self.spatial_dims!r}")
        # Frozen: normalised values go in through object.__setattr__ (lists from JSON become tuples).
        object.__setattr__(self, "scale", normalize_scale(self.scale, self.spatial_dims))
        for name in ("in_channels", "out_channels", "window_multiple"):
            _check_positive_int(name, getattr(self, name))
        _check_choice("kind", self.kind, KINDS)
        _check_choice("inputs", self.inputs, INPUTS)
        for name in ("input_on_output_grid", "global_pooling"):
            if not isinstance(getattr(self, name), bool):
                raise SciSRError(f"model spec {name} must be true or false, got {getattr(self, name)!r}")
        if self.receptive_field is not None:
            object.__setattr__(self, "receptive_field", _radius(self.receptive_field, self.spatial_dims))
        precisions = (self.precisions,) if isinstance(self.precisions, str) else tuple(self.precisions)
        if not precisions or any(p not in PRECISIONS for p in precisions):
            raise SciSRError(f"model spec precisions must be a non-empty selection of {PRECISIONS}, "
                             f"got {self.precisions!r}")
        object.__setattr__(self, "precisions", precisions)
        if self.degradation is not None and not isinstance(self.degradation, str):
            raise SciSRError(f"model spec degradation must be a string or null, got {self.degradation!r}")

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON data (tuples as lists); :meth:`from_dict` inverts it."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Parse :meth:`to_dict`'s output (e.g. ``card["spec"]``).

        Raises
        ------
        SciSRError
            ``data`` is not a mapping, lacks a required field, names an unknown one, or holds an
            invalid value.
        """
        if not isinstance(data, Mapping):
            raise SciSRError(f"model spec must be a JSON object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise SciSRError(f"model spec has unknown field(s) {', '.join(unknown)}")
        missing = [name for name, f in fields.items()
                   if f.default is dataclasses.MISSING and name not in data]
        if missing:
            raise SciSRError(f"model spec lacks {', '.join(missing)}")
        return cls(**data)


def spec_of(model: nn.Module, *, spatial_dims: int | None = None, scale: int | Sequence[int] | None = None,
            in_channels: int | None = None) -> ModelSpec:
    """The :class:`ModelSpec` of a network: ``model.spec``, or one derived from a plain module's attributes.

    Parameters
    ----------
    model : torch.nn.Module
        A registry network (has ``spec``), or any module with ``scale`` (int or one factor per axis),
        ``spatial_dims`` and ``in_channels`` attributes (``spatial_dims`` defaults to the length of a
        per-axis ``scale``, ``out_channels`` to ``in_channels``). Such a module may also declare
        ``receptive_field``, ``global_pooling``, ``window_multiple`` and ``input_on_output_grid``
        (meanings as in :class:`ModelSpec`).
    spatial_dims, scale, in_channels : optional
        Values used where a plain module lacks the attribute (callers that know the input, like tiled
        prediction); ignored for a module with a ``spec``.

    Returns
    -------
    ModelSpec
        For a plain module: ``arch`` from its ``card`` or class name, ``kind="post"``,
        ``inputs="image"``, the declared attributes, defaults otherwise.

    Raises
    ------
    SciSRError
        When ``model.spec`` is not a ModelSpec, or a plain module has no scale, dimensions or channels
        (naming what is missing), or declares invalid values.
    """
    spec = getattr(model, "spec", None)
    if spec is not None:
        if not isinstance(spec, ModelSpec):
            raise SciSRError(f"{type(model).__name__}.spec is a {type(spec).__name__}, not a sciSR ModelSpec")
        return spec
    scale = getattr(model, "scale", scale)
    spatial_dims = getattr(model, "spatial_dims", spatial_dims)
    if spatial_dims is None and isinstance(scale, Sequence):
        spatial_dims = len(scale)
    in_channels = getattr(model, "in_channels", in_channels)
    missing = [name for name, value in (("scale", scale), ("spatial_dims", spatial_dims),
                                        ("in_channels", in_channels)) if value is None]
    if missing:
        raise SciSRError(
            f"{type(model).__name__} has no {', '.join(missing)}: build it with sciSR.models.create_model, or "
            "give the module scale (one factor per spatial axis), spatial_dims and in_channels attributes")
    card = getattr(model, "card", None)
    arch = card.get("arch") if isinstance(card, Mapping) and card.get("arch") else type(model).__name__
    declared = {name: getattr(model, name) for name in _DECLARABLE if getattr(model, name, None) is not None}
    return ModelSpec(arch=arch, scale=scale, spatial_dims=spatial_dims, in_channels=in_channels,
                     out_channels=getattr(model, "out_channels", in_channels), **declared)


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SciSRError(f"model spec {name} must be a positive integer, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SciSRError(f"model spec {name} must be one of {', '.join(choices)}, got {value!r}")


def _radius(value: int | Sequence[int], spatial_dims: int) -> tuple[int, ...]:
    radius = (value,) * spatial_dims if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(radius) != spatial_dims or any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in radius):
        raise SciSRError(f"model spec receptive_field {value!r} must be a non-negative int or one per spatial "
                         f"axis ({spatial_dims})")
    return radius
