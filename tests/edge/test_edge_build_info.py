"""The startup banner says whether the compiled request path runs (the compiled-build test sets the env)."""

from __future__ import annotations

import os

from originlock.edge.build_info import head_splitter, hot_path_compiled, hot_path_kind


def test_hot_path_kind_matches_the_tree_under_test() -> None:
    expected = os.environ.get("ORIGINLOCK_EXPECT_COMPILED") == "1"
    assert hot_path_compiled() is expected
    assert hot_path_kind().startswith("compiled" if expected else "interpreted")


def test_the_banner_says_how_response_heads_are_split() -> None:
    # The wheel builds the C splitter with the compiled modules; a source tree has neither.
    expected = os.environ.get("ORIGINLOCK_EXPECT_COMPILED") == "1"
    assert head_splitter().startswith("C (" if expected else "llhttp's per-field callbacks")
