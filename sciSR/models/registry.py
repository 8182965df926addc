"""The architecture registry: ``register_model`` decorates a family's class, ``create_model`` builds by name.

Like timm's registry, each entry keeps the paper-default options as data; unlike timm, every entry builds
in 2D and 3D and at any integer factor per axis.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sciSR.errors import SciSRError
from sciSR.geometry import normalize_scale
from sciSR.models.base import ZooModel
from sciSR.models.spec import ModelSpec


@dataclass(frozen=True)
class ModelInfo:
    """One registry entry.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"edsr-baseline"``.
    cls : type
        The :class:`~sciSR.models.base.ZooModel` subclass.
    paper : str
        ``"Authors. Title. Venue Year."``
    year : int
        Publication year.
    kind : str
        ``"pre"``, ``"post"``, ``"progressive"``, ``"discriminator"``, ``"fusion"`` (several input stacks
        on the output grid as channel groups) or ``"reference"`` (``forward(x, ref)``).
    defaults : dict
        Paper-default options (keyword arguments of ``cls``).
    """

    name: str
    cls: type
    paper: str
    year: int
    kind: str
    defaults: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """``{"name", "paper", "year", "kind", "defaults"}`` (what :func:`list_architectures` returns)."""
        return {"name": self.name, "paper": self.paper, "year": self.year, "kind": self.kind,
                "defaults": dict(self.defaults)}


MODEL_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str, *, paper: str, year: int,
                   overrides: dict[str, Any] | None = None) -> Callable[[type], type]:
    """Class decorator adding an architecture to :data:`MODEL_REGISTRY`.

    Parameters
    ----------
    name : str
        Registry name (lower case, dashes).
    paper : str
        Citation: ``"Authors. Title. Venue Year."``
    year : int
        Publication year.
    overrides : dict, optional
        Defaults that differ from the class signature's (one class can back several entries, e.g.
        ``edsr`` and ``edsr-baseline``).

    Notes
    -----
    The defaults are the keyword-only parameters of the class's ``__init__`` (the paper configuration),
    updated with ``overrides``; ``kind`` comes from the class.
    """

    def decorate(cls: type) -> type:
        if name in MODEL_REGISTRY:
            raise SciSRError(f"architecture {name!r} is registered twice")
        params = inspect.signature(cls.__init__).parameters.values()
        defaults = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
        unknown = set(overrides or {}) - set(defaults)
        if unknown:
            raise SciSRError(f"{name}: overrides name unknown options {sorted(unknown)}")
        defaults.update(overrides or {})
        MODEL_REGISTRY[name] = ModelInfo(name, cls, paper, year, cls.kind, defaults)
        return cls

    return decorate


def list_architectures() -> list[dict[str, Any]]:
    """Architectures in the registry (untrained networks to build), oldest paper first.

    Returns
    -------
    list of dict
        ``{"name", "paper", "year", "kind", "defaults"}`` per architecture.
    """
    return [info.as_dict() for info in sorted(MODEL_REGISTRY.values(), key=lambda i: (i.year, i.name))]


list_models = list_architectures
"""Alias of :func:`list_architectures`, kept for code written before the rename (trained model files
are listed by :func:`sciSR.hub.shipped_models`)."""


def get_model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; raises :class:`~sciSR.errors.SciSRError` naming the choices."""
    try:
        return MODEL_REGISTRY[name]
    except KeyError:
        raise SciSRError(f"unknown architecture {name!r}; choose from {', '.join(sorted(MODEL_REGISTRY))}") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def create_model(
    name: str,
    scale: int | Sequence[int] | None = None,
    spatial_dims: int = 2,
    in_channels: int = 1,
    out_channels: int | None = None,
    **options: Any,
) -> ZooModel:
    """Build an architecture by registry name with its paper-default options.

    Parameters
    ----------
    name : str
        A name from :func:`list_architectures`, e.g. ``"edsr"``, ``"swinir"``, ``"srgan-d"``.
    scale : int or sequence of int, optional
        Upscaling factor, one for all spatial axes or one per axis (``(1, 1, 4)`` for through-plane MRI).
        Default 2 for super-resolution networks; discriminators take none (all ones).
    spatial_dims : int
        2 for ``(B, C, H, W)`` inputs, 3 for ``(B, C, D, H, W)``.
    in_channels : int
        Input channels (1 for scientific images; 3 reproduces the RGB papers).
    out_channels : int, optional
        Output channels; default ``in_channels`` (1 for discriminators).
    **options
        Architecture options overriding the paper defaults (see ``list_architectures()[i]["defaults"]``).

    Returns
    -------
    ZooModel
        With ``spec`` (:class:`~sciSR.models.spec.ModelSpec`, ``arch`` the registry name), read-only
        ``scale`` (tuple), ``spatial_dims``, ``in_channels``, ``out_channels``, and ``card`` —
        ``{"arch", "options", "scale", "spatial_dims", "in_channels", "out_channels", "spec"}``, from
        which ``create_model(card["arch"], scale=card["scale"], spatial_dims=..., in_channels=...,
        out_channels=..., **card["options"])`` rebuilds the same network (``card["spec"]`` is
        ``spec.to_dict()``).

    Raises
    ------
    SciSRError
        Unknown name or option, a scale the architecture cannot produce (e.g. ×3 for LapSRN, any scale
        for a discriminator), or invalid dimensions/channels.
    """
    info = get_model_info(name)
    unknown = sorted(set(options) - set(info.defaults))
    if unknown:
        raise SciSRError(
            f"{name} has no option {', '.join(map(repr, unknown))} (options: {', '.join(info.defaults) or 'none'})"
        )
    if spatial_dims not in (2, 3):
        raise SciSRError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    is_discriminator = info.kind == "discriminator"
    factors = normalize_scale((1 if is_discriminator else 2) if scale is None else scale, spatial_dims)
    if is_discriminator and any(f != 1 for f in factors):
        raise SciSRError(f"{name} is a discriminator and takes no scale (got {factors})")
    if out_channels is None:
        out_channels = 1 if is_discriminator else in_channels
    resolved = {**info.defaults, **options}
    model = info.cls(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                     scale=factors, **resolved)
    # One class can back several registry names (edsr, edsr-baseline): the name is known only here.
    model.spec = dataclasses.replace(model.spec, arch=name)
    model.card = {
        "arch": name,
        "options": {k: _jsonable(v) for k, v in resolved.items()},
        "scale": list(model.scale),
        "spatial_dims": spatial_dims,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "spec": model.spec.to_dict(),
    }
    return model


def spec_from_card(card: Mapping[str, Any]) -> ModelSpec:
    """The spec of a model card, also of a card written before cards had one.

    Parameters
    ----------
    card : Mapping
        A model card: ``arch``, ``scale``, ``spatial_dims``, ``in_channels`` and optionally
        ``out_channels`` (default ``in_channels``), ``options`` (default: the paper defaults),
        ``spec`` and ``training`` (``training["degradation"]["type"]``).

    Returns
    -------
    ModelSpec
        ``card["spec"]`` when present; otherwise derived from the card's fields and the registry's
        class for ``arch`` with the card's options, without building the network. A missing
        ``degradation`` is taken from the training degradation the card records.

    Raises
    ------
    SciSRError
        Unknown architecture, invalid values, or a ``spec`` that disagrees with the card's
        ``arch``, ``scale``, ``spatial_dims`` or channels.
    """
    for key in ("arch", "scale", "spatial_dims", "in_channels"):
        if key not in card:
            raise SciSRError(f"model card lacks {key}")
    in_channels = card["in_channels"]
    top = {"arch": card["arch"], "scale": card["scale"], "spatial_dims": card["spatial_dims"],
           "in_channels": in_channels, "out_channels": card.get("out_channels", in_channels)}
    if "spec" in card:
        spec = ModelSpec.from_dict(card["spec"])
        expected = ModelSpec(**top)
        for key in top:
            if getattr(spec, key) != getattr(expected, key):
                raise SciSRError(f"model card spec says {key} {getattr(spec, key)!r}, the card "
                                 f"{getattr(expected, key)!r}")
    else:
        info = get_model_info(card["arch"])
        options = {**info.defaults, **card.get("options", {})}
        spec = ModelSpec(**top, kind=info.kind, **info.cls.spec_abilities(options))
    if spec.degradation is None:
        spec = dataclasses.replace(spec, degradation=_training_degradation(card))
    return spec


def _training_degradation(card: Mapping[str, Any]) -> str | None:
    """``card["training"]["degradation"]["type"]`` (what the training tool records), or None."""
    training = card.get("training")
    degradation = training.get("degradation") if isinstance(training, Mapping) else None
    family = degradation.get("type") if isinstance(degradation, Mapping) else None
    return family if isinstance(family, str) else None
