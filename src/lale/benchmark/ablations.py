"""The ablations of a benchmark: variants of one LALE model that differ in one design choice.

``lale benchmark --ablation NAME`` trains the variants :func:`ablation_entries` builds (the
model's own setting first, the reference of the verdicts) in place of a list of models; the
rest of the plan (:mod:`lale.benchmark.plan`) is that of any benchmark.
"""

from __future__ import annotations

from typing import Any

from lale.benchmark.plan import Entry
from lale.errors import UsageError

__all__ = ["ABLATIONS", "PRETRAINING", "ablation_entries"]

# The ablations: variants of one LALE model; the first variant is the paper's, the reference.
ABLATIONS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "attention": (
        ("attn16", {"mixers": ["conv", "conv", "attn", "attn"]}),  # attention at 1/16 and 1/32
        ("attn8", {"mixers": ["conv", "attn", "attn", "attn"]}),  # from 1/8
        ("attn4", {"mixers": ["attn", "attn", "attn", "attn"]}),  # from 1/4
        ("noattn", {"mixers": ["conv", "conv", "conv", "conv"]}),
    ),
    "kernel": (("K7", {"kernel_size": 7}), ("K3", {"kernel_size": 3})),
    "norm-act": (
        ("rms+starrelu", {"norm": "rms", "act": "starrelu"}),
        ("bn-ln+gelu", {"norm": "classic", "act": "gelu"}),
    ),
    "decoder": (
        ("D128", {"decoder_dim": 128}),
        ("D64", {"decoder_dim": 64}),
        ("D256", {"decoder_dim": 256}),
    ),
}


PRETRAINING = "pretraining"
"""The ablation comparing random initialisation (``scratch``) with pretrained weights (``PT``)."""


def ablation_entries(
    name: str, model: str, base: dict[str, Any] | None = None, init: str | None = None
) -> tuple[Entry, ...]:
    """The variants of ``model`` that ablation ``name`` compares, the model's own setting first.

    The first variant is the reference of the verdicts: the one that is ``model`` as registered
    (e.g. ``D64`` for ``lale_t``'s decoder), else the paper's setting. Variants the model's
    widths cannot build are left out (an attention stage's width must split evenly into
    :func:`~lale.models.blocks.attention_heads`; every registered LALE model's widths do).

    ``pretraining`` compares ``MODEL-scratch`` (random initialisation, the reference) with
    ``MODEL-PT`` (started from ``init``) at the same budget.

    Args:
        name: ``attention``, ``kernel``, ``norm-act``, ``decoder`` or ``pretraining``.
        model: The LALE model whose variants are built.
        base: Options every variant shares (e.g. a shrunken model for tests).
        init: The pretrained weights of ``pretraining``'s PT variant.

    Raises:
        UsageError: Unknown ablation name, or ``pretraining`` without ``init``.
    """
    from lale.models.registry import model_kwargs

    if name == PRETRAINING:
        if init is None:
            raise UsageError(
                "--ablation pretraining needs the weights of its PT variant: "
                "--init PRETRAIN_RUN or --init hf-hub:ORG/NAME"
            )
        shared = dict(base or {})
        return (
            Entry(f"{model}-scratch", model, shared),
            Entry(f"{model}-PT", model, dict(shared), init=init),
        )
    if init is not None:
        raise UsageError("--init applies to --ablation pretraining only")
    if name not in ABLATIONS:
        names = ", ".join([*ABLATIONS, PRETRAINING])
        raise UsageError(f"unknown ablation {name!r}; choose from {names}")
    own = {**model_kwargs(model), **(base or {})}
    variants = sorted(
        ABLATIONS[name],
        key=lambda v: not all(_same(own.get(k), x) for k, x in v[1].items()),
    )  # stable: the paper's order otherwise
    return tuple(
        Entry(f"{model}-{label}", model, {**(base or {}), **kwargs})
        for label, kwargs in variants
        if _buildable(model, {**(base or {}), **kwargs})
    )


def _buildable(model: str, kwargs: dict[str, Any]) -> bool:
    from lale.models.network import LaleConfig
    from lale.models.registry import model_kwargs

    fields = LaleConfig.__dataclass_fields__
    options = {k: v for k, v in model_kwargs(model, **kwargs).items() if k in fields}
    try:
        LaleConfig(**options)
    except ValueError:
        return False
    return True


def _same(a: Any, b: Any) -> bool:
    return (list(a) if isinstance(a, tuple) else a) == (list(b) if isinstance(b, tuple) else b)
