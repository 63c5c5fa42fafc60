"""Settings of a CRS deployment that ``crs-setup.conf`` would hold, as TX variables.

``DEFAULT_TX`` is what every deployment gets on top of the CRS's own defaults (rule 901*): the
argument and upload limits that the CRS leaves unset (rules 920370-920390 only run when they are set);
the values are those of the CRS project's own container image. ``REGRESSION_TX`` adds the settings
the CRS regression tests are written against (its test configuration allows more methods and
enables 920450's extended header list).
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_TX", "REGRESSION_TX"]

DEFAULT_TX: Final[tuple[tuple[str, str], ...]] = (
    ("max_num_args", "255"),
    ("arg_name_length", "100"),
    ("arg_length", "400"),
    ("total_arg_length", "64000"),
    ("max_file_size", "1048576"),
    ("combined_file_sizes", "1048576"),
)

REGRESSION_TX: Final[tuple[tuple[str, str], ...]] = DEFAULT_TX
