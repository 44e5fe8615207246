"""`dita bench`: every benchmark of dita, run on this machine, in one report.

One module per benchmark, each with `NAME`, `TITLE` and `run(quick, log) ->
Section`: `kernel` (the kernel through the Python API against the reference
model and with the mock venue), `boundary` (a model of the earlier design's
JSON boundary), `projection` (Hazelcast lag, overhead, highest rate,
convergence), `control` (propagation to kernel processes) and `memory`
(resident memory per 1,000 slots). `suite` runs them and `report` writes the
JSON and Markdown. Importing this package imports none of them.
"""

#: The benchmarks, in the order they run and appear in the report.
NAMES = ("kernel", "boundary", "projection", "control", "memory")
