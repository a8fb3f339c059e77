"""kuroshio benchmarks: ``make bench`` runs every ``bench_*.py`` here and writes one report."""
