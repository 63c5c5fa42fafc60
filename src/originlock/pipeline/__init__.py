"""One request lifecycle as named phases; pure (no asyncio, sockets or clock).

The order lives in :mod:`originlock.pipeline.phases`. The edge's async shell
(:mod:`originlock.edge.exchange`) runs the pure phases through :func:`~originlock.pipeline.phases.
run_until_origin`, then performs the I/O phases in the order that module declares.
"""

from originlock.pipeline.context import PipelineSettings, RequestContext
from originlock.pipeline.decision import CONTINUE, Continue, Decision, Forward, Respond
from originlock.pipeline.hooks import WafHook
from originlock.pipeline.phases import PHASE_ORDER, Phase, run_until_origin

__all__ = [
    "CONTINUE",
    "PHASE_ORDER",
    "Continue",
    "Decision",
    "Forward",
    "Phase",
    "PipelineSettings",
    "RequestContext",
    "Respond",
    "WafHook",
    "run_until_origin",
]
