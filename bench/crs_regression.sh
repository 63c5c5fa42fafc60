#!/bin/sh
# The whole CRS regression corpus through the real edge (the suite sends a deterministic third of it).
cd "$(dirname "$0")/.." && CRS_FULL=1 exec python -m pytest -q -s -p no:cacheprovider \
    "tests/e2e/test_crs_regression.py::test_crs_regression_suite_through_the_edge" "$@"
