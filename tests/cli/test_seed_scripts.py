"""The original NeuralRG command lines run as written (with fewer epochs)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED_COMMANDS = {
    "tebd": "learn_tebd.py -Batchsize 64 -Ntherm 0 -Nsteps 1 -Nskip 0 -Depth 8 -Nlayers 4 -Hs 64 "
    "-Ht 64 -target ising -T 2.269 -L 4 -d 2 -train_model",
    "mera": "learn_mera.py -Batch 64 -Ntherm 0 -Nsteps 1 -Nskip 0 -Ndisentangler 1 -Nlayers 4 "
    "-Hs 64 -Ht 64 -target ising -T 2.269 -L 4 -d 2 -train_model",
}


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
@pytest.mark.parametrize("layout", SEED_COMMANDS)
def test_seed_command_runs_to_completion(layout, tmp_path):
    script, *flags = SEED_COMMANDS[layout].split()
    done = run([str(ROOT / script), *flags, "-Nepoch", "4", "-exact", "0.7614"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("epoch ") == 4 and "acceptance" in out and "m2" in out
    assert "relative gap" in out and "-exact 0.7614" in out
    runs = list((tmp_path / "data" / f"learn_{layout}").iterdir())
    assert len(runs) == 1 and (runs[0] / "checkpoint.pt").exists()
    again = run(
        [
            str(ROOT / script),
            "-L",
            "4",
            "-T",
            "2.269",
            "-Batch",
            "64",
            "-modelname",
            runs[0].name,
            "-Nsteps",
            "2",
        ],
        tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert "acceptance ratio" in again.stdout


@pytest.mark.parametrize(
    "script,flags,message",
    [
        ("learn_tebd.py", ["-Ndisentangler", "2"], "-Ndisentangler is for learn_mera.py"),
        ("learn_mera.py", ["-Depth", "4"], "-Depth is for learn_tebd.py"),
        ("learn_mera.py", ["-L", "6", "-train_model"], "L=6"),
        ("learn_mera.py", ["-Batchsize", "0", "-train_model"], "batch_size=0"),
        ("learn_mera.py", ["-T", "-1"], "T=-1"),
        ("learn_mera.py", ["-modelname", "missing"], "holds no config.json"),
    ],
)
def test_seed_scripts_reject_bad_input(script, flags, message, tmp_path):
    done = run([str(ROOT / script), *flags], tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
