"""One request lifecycle as named phases; pure (no asyncio, sockets or clock).

The lifecycle's order is written down once, in :mod:`originlock.edge.exchange`, which runs the pure phases
through :func:`~originlock.pipeline.phases.run_until_origin` and then the I/O phases.
"""

from originlock.pipeline.context import PipelineSettings, RequestContext
from originlock.pipeline.decision import CONTINUE, Continue, Decision, Forward, Respond
from originlock.pipeline.hooks import WafHook
from originlock.pipeline.phases import run_until_origin

__all__ = [
    "CONTINUE",
    "Continue",
    "Decision",
    "Forward",
    "PipelineSettings",
    "RequestContext",
    "Respond",
    "WafHook",
    "run_until_origin",
]
