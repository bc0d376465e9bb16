"""Benchmarks: lxclab against the real peer tools, side by side in one run (`python -m bench.bench_pull`)."""
