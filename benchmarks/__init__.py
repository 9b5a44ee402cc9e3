"""Speed and quality benchmarks (never run as tests); see benchmarks/README.md."""
