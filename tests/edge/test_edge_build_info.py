"""The startup banner says whether the compiled request path runs (the compiled-build test sets the env)."""

from __future__ import annotations

import os

from originlock.edge.build_info import hot_path_compiled, hot_path_kind


def test_hot_path_kind_matches_the_tree_under_test() -> None:
    expected = os.environ.get("ORIGINLOCK_EXPECT_COMPILED") == "1"
    assert hot_path_compiled() is expected
    assert hot_path_kind().startswith("compiled" if expected else "interpreted")
