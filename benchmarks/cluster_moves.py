"""Which cluster update should the product's exact equilibrium moves use?

2D Ising at T_c: the product's Swendsen-Wang sweep (:mod:`neuralrg.targets.clusters`,
vectorised over chains, clusters labelled by scipy) against numba-compiled Wolff
single-cluster updates (:mod:`benchmarks.wolff`), each on ``--chains`` chains, one
thread, side by side in one run. For each: CPU seconds per update, the integrated
autocorrelation time of E and |m| in updates, and effective samples per CPU second
(n / 2 tau_int / s). The relaxed model's full move (spins given x, the sweep, x given the
spins) is timed too.

    python -m benchmarks.cluster_moves --L 16 32 64
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.common import RESULTS, environment, print_table, write_json
from benchmarks.wolff import IMPLEMENTATION, WolffChains, warm_up
from neuralrg.exact import T_CRITICAL_2D
from neuralrg.mcmc import integrated_autocorr_time
from neuralrg.targets import RelaxedIsing
from neuralrg.targets.clusters import swendsen_wang
from neuralrg.targets.ising import ising_energy


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--L", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--chains", type=int, default=64)
    parser.add_argument("--therm", type=int, default=100, help="sweeps / updates discarded")
    parser.add_argument("--sweeps", type=int, default=1000, help="Swendsen-Wang sweeps recorded")
    parser.add_argument("--wolff-updates", type=int, default=4000, help="Wolff updates recorded")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=RESULTS / "cluster_moves.json")
    return parser.parse_args()


def figures(energy: np.ndarray, m_abs: np.ndarray, seconds: float) -> dict:
    n_updates = energy.shape[0]
    taus = {"E": integrated_autocorr_time(energy), "|m|": integrated_autocorr_time(m_abs)}
    return {"seconds_per_update": seconds / n_updates,
            **{f"tau_{k}": float(v) for k, v in taus.items()},
            **{f"ess_per_second_{k}": energy.size / (2 * max(v, 0.5)) / seconds
               for k, v in taus.items()}}


def swendsen_wang_run(L: int, args) -> dict:
    generator = torch.Generator().manual_seed(args.seed)
    spins = 1 - 2 * torch.randint(0, 2, (args.chains, L, L), generator=generator).double()
    coupling = 1 / T_CRITICAL_2D
    for _ in range(args.therm):
        spins = swendsen_wang(spins, coupling, generator)
    energy, m_abs = [], []
    start = time.process_time()
    for _ in range(args.sweeps):
        spins = swendsen_wang(spins, coupling, generator)
        energy.append(ising_energy(spins) / L**2)
        m_abs.append(spins.mean((1, 2)).abs())
    seconds = time.process_time() - start
    return figures(torch.stack(energy).numpy(), torch.stack(m_abs).numpy(), seconds)


def wolff_run(L: int, args) -> dict:
    chains = WolffChains(L, T_CRITICAL_2D, args.chains, args.seed)
    chains.advance(args.therm)
    start = time.process_time()
    m_abs, energy = chains.advance(args.wolff_updates)
    seconds = time.process_time() - start
    return figures(energy, m_abs, seconds)


def relaxed_move_seconds(L: int, args, repeats: int = 20) -> float:
    target, generator = RelaxedIsing(L), torch.Generator().manual_seed(args.seed)
    x = target.exact_move(torch.zeros(args.chains, L, L), generator)
    start = time.process_time()
    for _ in range(repeats):
        x = target.exact_move(x, generator)
    return (time.process_time() - start) / repeats


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    warm_up()
    results, rows = {}, []
    for L in args.L:
        sw, wolff = swendsen_wang_run(L, args), wolff_run(L, args)
        move = relaxed_move_seconds(L, args)
        results[L] = {"swendsen_wang": sw, "wolff": wolff, "relaxed_move_seconds": move}
        for name, r in (("Swendsen-Wang (scipy)", sw), (f"Wolff ({IMPLEMENTATION})", wolff)):
            rows.append([L, name, r["seconds_per_update"] * 1e3, r["tau_E"], r["tau_|m|"],
                         r["ess_per_second_E"], r["ess_per_second_|m|"]])
        ratio = [wolff[f"ess_per_second_{k}"] / sw[f"ess_per_second_{k}"] for k in ("E", "|m|")]
        rows.append([L, "ratio Wolff / SW", "", "", "", ratio[0], ratio[1]])
        print(f"L={L}: the relaxed model's exact move, {args.chains} chains: "
              f"{move * 1e3:.1f} ms", flush=True)
    print_table(["L", "kernel", "ms / update (all chains)", "tau E", "tau |m|", "ESS/s E",
                 "ESS/s |m|"], rows)
    write_json(args.out, {"args": {**vars(args), "out": str(args.out)},
                          "environment": environment(torch.device("cpu"), 1),
                          "results": results})


if __name__ == "__main__":
    main()
