"""phronesis-dagster: the Phronesis app's data pipeline as one Dagster code location."""

import gc

# Every object alive now goes to the collector's permanent generation. A run process imports
# this package after Dagster and its instance are up (hundreds of thousands of objects), and each
# full garbage collection while the code location loaded walked all of them again: 0.22 s of a
# 0.58 s load (the load timed with the collector on, off and frozen, 3 runs each, load 3; see
# BENCHMARKS.md, 2026-12-03). Nothing frozen is garbage (modules, classes, functions); objects
# made later are collected as before.
gc.freeze()
