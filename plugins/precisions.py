"""Built-in precisions: ``fp32``, ``fp16`` (the pure ``.half()`` way), ``bf16`` and ``fp64``.

``fp16`` here is what the source material does: parameters and inputs cast with ``.half()``,
no loss scaling, the optimizer's state in float16 too. It is expected to fail on some
workloads (Adam's epsilon and second moments underflow); that is a result worth recording.
"""

from __future__ import annotations

import torch

import benchkit
from benchkit import Precision


class CastPrecision(Precision):
    """Train with parameters and floating inputs cast to one dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


@benchkit.hookimpl
def benchkit_register_precisions(register):
    """Plain casts to float32, float16, bfloat16 and float64."""
    register("fp32", lambda: CastPrecision(torch.float32), description="float32")
    register(
        "fp16",
        lambda: CastPrecision(torch.float16),
        description="float16 by .half(), no loss scaling (the source's way)",
    )
    register("bf16", lambda: CastPrecision(torch.bfloat16), description="bfloat16 by cast")
    register("fp64", lambda: CastPrecision(torch.float64), description="float64 reference")
