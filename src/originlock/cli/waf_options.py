"""The WAF's body-inspection flags, shared by `originlock serve` and `originlock edge` (one definition, one default)."""

from __future__ import annotations

import argparse
import time

from originlock.cli.api_options import byte_size
from originlock.pipeline.builtin.waf import DEFAULT_BODY_LIMIT, EdgeWaf
from originlock.pipeline.builtin.waf_response import DEFAULT_RESPONSE_BODY_LIMIT

__all__ = ["add_waf_options", "edge_waf_from_args"]


def add_waf_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("WAF")
    group.add_argument(
        "--waf-body-limit",
        type=byte_size,
        default=DEFAULT_BODY_LIMIT,
        metavar="BYTES",
        help="request body bytes the managed rules inspect; the rest streams to the origin uninspected, as at "
        "Cloudflare (default 128k)",
    )
    group.add_argument(
        "--waf-response-body-limit",
        type=byte_size,
        default=DEFAULT_RESPONSE_BODY_LIMIT,
        metavar="BYTES",
        help="response body bytes held and inspected by response-phase rules, for zones that deploy them "
        "(ModSecurity's SecResponseBodyLimit; default 512k)",
    )


def edge_waf_from_args(args: argparse.Namespace) -> EdgeWaf:
    """One process's WAF hook with the limits the flags chose (workers get copies with the same limits)."""
    return EdgeWaf(
        time.monotonic, time.time, body_limit=args.waf_body_limit, response_body_limit=args.waf_response_body_limit
    )
