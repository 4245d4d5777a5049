"""`python -m bench`: run the benchmarks (today: the indicator benchmark)."""

from bench.indicators import main

if __name__ == "__main__":
    raise SystemExit(main())
