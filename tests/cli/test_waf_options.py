"""The WAF's inspection limits are the user's to choose, on `serve` and on the `edge` role, and reach every worker."""

from __future__ import annotations

import pickle

import pytest

from originlock.cli.main import build_parser
from originlock.cli.waf_options import edge_waf_from_args
from originlock.pipeline.builtin.waf import DEFAULT_BODY_LIMIT
from originlock.pipeline.builtin.waf_response import DEFAULT_RESPONSE_BODY_LIMIT


@pytest.mark.parametrize("command", [["serve"], ["edge", "--store", "sqlite:///x.db"]])
def test_flags_set_the_hooks_limits_and_workers_get_them(command: list[str]) -> None:
    args = build_parser().parse_args([*command, "--waf-body-limit", "8k", "--waf-response-body-limit", "2m"])
    waf = edge_waf_from_args(args)
    assert (waf.body_limit, waf.response_body_limit) == (8 * 1024, 2 * 1024 * 1024)
    copy = pickle.loads(pickle.dumps(waf))  # what a --workers process receives
    assert (copy.body_limit, copy.response_body_limit) == (8 * 1024, 2 * 1024 * 1024)


def test_defaults_are_cloudflares_and_modsecuritys() -> None:
    waf = edge_waf_from_args(build_parser().parse_args(["serve"]))
    assert (waf.body_limit, waf.response_body_limit) == (DEFAULT_BODY_LIMIT, DEFAULT_RESPONSE_BODY_LIMIT)
    assert (DEFAULT_BODY_LIMIT, DEFAULT_RESPONSE_BODY_LIMIT) == (128 * 1024, 512 * 1024)


def test_a_bad_size_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["serve", "--waf-body-limit", "lots"])
    assert exit_.value.code == 2
    assert "'lots' is not a size" in capsys.readouterr().err
