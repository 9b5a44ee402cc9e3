#!/usr/bin/env python3
"""Seed-compatible MERA-like NeuralRG training (flags as in the original NeuralRG README)."""

import sys

from neuralrg.cli.seed import main

if __name__ == "__main__":
    sys.exit(main("mera"))
