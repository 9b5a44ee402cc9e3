#!/usr/bin/env python3
"""Set-up, run and test in one place; creates or reuses the local virtual environment .venv.

    python3 dev.py train [neuralrg train flags]   # the main job (MERA, 8x8 Ising at Tc)
    python3 dev.py test [pytest flags]            # the whole test suite
    python3 dev.py neuralrg ARGS...               # any neuralrg command inside .venv
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".neuralrg-setup"
SETUP_FILES = ("pyproject.toml", "constraints.txt")


def setup_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in SETUP_FILES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create .venv and install the package with its test extras, once per set-up change."""
    fingerprint = setup_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    if not (BIN / "python").exists():
        print("creating virtual environment .venv", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    print("installing neuralrg and its dependencies into .venv", flush=True)
    subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(fingerprint)


def run(argv: list[str]) -> int:
    ensure_venv()
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "train":
        cmd = [str(BIN / "neuralrg"), "train", *rest]
    elif command == "test":
        cmd = [str(BIN / "python"), "-m", "pytest", "-n", "2", *rest]
    elif command == "neuralrg":
        cmd = [str(BIN / "neuralrg"), *rest]
    else:
        print(__doc__)
        return 0 if command == "help" else 2
    return subprocess.run(cmd, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
