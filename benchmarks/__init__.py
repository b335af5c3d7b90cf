"""reclift's benchmarks: what DESIGN.md §5 calls fast and reliable, measured (never asserted in tests).

`python -m benchmarks [name ...] [--quick]` runs them; each writes `benchmarks/results/<name>.json` (figures, the
configuration and the machine) and `benchmarks/results/<name>.png`, and prints a short summary. The machines are
noisy: where a comparison matters, the benchmark reports a ratio to a baseline measured in the same run.
"""
