"""The loss terms: annealing, replay buffer, NLL and acceptance terms, the forward term."""

import copy
import math

import pytest
import torch

from neuralrg.flows.flow import FlowConfig, build_flow
from neuralrg.targets.ising import RelaxedIsing
from neuralrg.training import TrainConfig, Trainer, fit
from neuralrg.training.objective import LossConfig, Objective

TARGET = RelaxedIsing(4, 2.5)


def small_flow():
    return build_flow(FlowConfig(L=4, n_layers=2, hidden_s=8, hidden_t=8))


def test_beta_rises_linearly_to_one_over_the_first_half():
    objective = Objective(small_flow(), TARGET.log_prob, LossConfig(beta=0.2), 8, False)
    assert objective.beta_at(0.0) == pytest.approx(0.2)
    assert objective.beta_at(0.25) == pytest.approx(0.6)
    assert objective.beta_at(0.5) == objective.beta_at(0.9) == 1.0


def test_replay_buffer_holds_accepted_states_and_their_flips():
    objective = Objective(small_flow(), TARGET.log_prob, LossConfig(delta=1.0, buffer_factor=2),
                          4, z2_symmetric=True)
    generator = torch.Generator().manual_seed(0)
    objective(0.0, generator)
    assert objective.buffer_fill == 8
    buffer = objective.buffer[:8]
    assert torch.equal(buffer[4:], -buffer[:4])
    for _ in range(3):
        objective(0.0, generator)
    assert objective.buffer_fill == 8 and objective.buffer.shape[0] == 8


def test_acceptance_term_is_the_mean_clipped_log_ratio():
    flow = small_flow()
    objective = Objective(flow, TARGET.log_prob, LossConfig(omega=0.0, epsilon=1.0), 16, False)
    generator = torch.Generator().manual_seed(1)
    objective(0.0, generator)
    previous = dict(objective.chain)
    state = generator.get_state()
    outcome = objective(0.0, generator)
    generator.set_state(state)
    x, log_q = flow.sample(16, generator)
    new = TARGET.log_prob(x) - log_q
    old = TARGET.log_prob(previous["x"]) - flow.log_prob(previous["x"])
    expected = -torch.clamp(new - old, max=0).mean()
    assert torch.allclose(outcome.loss, expected, atol=1e-5)
    assert 0 <= outcome.acceptance <= 1


def test_nll_term_alone_trains_towards_metropolis_samples():
    flow = small_flow()
    trainer = Trainer(flow, TARGET.log_prob,
                      TrainConfig(steps=60, batch_size=32, lr=3e-3, log_every=60),
                      LossConfig(omega=0.0, delta=1.0), z2_symmetric=True)
    fit(trainer, progress=False)
    buffer = trainer.objective.buffer[: trainer.objective.buffer_fill]
    fresh = build_flow(FlowConfig(L=4, n_layers=2, hidden_s=8, hidden_t=8))
    with torch.no_grad():
        assert flow.log_prob(buffer).mean() > fresh.log_prob(buffer).mean()


@pytest.mark.parametrize("kwargs,match", [
    (dict(omega=-1.0), "omega=-1.0"), (dict(delta=math.nan), "delta=nan"),
    (dict(epsilon=math.inf), "epsilon=inf"), (dict(beta=0.0), "beta=0.0"),
    (dict(beta=1.5), "beta=1.5"), (dict(omega=0.0), "all 0"), (dict(buffer_factor=0), "buffer"),
    (dict(forward=-1.0), "forward=-1.0"), (dict(forward_every=0), "forward_every=0"),
    (dict(forward_samples=0), "forward_samples=0"),
    (dict(forward_schedule="cosine"), "forward_schedule='cosine'"),
])
def test_bad_loss_weights(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Objective(small_flow(), TARGET.log_prob, LossConfig(**kwargs), 8, False)


def test_micro_batches_add_up_to_the_full_batch_gradient(monkeypatch):
    import neuralrg.training.objective as objective_module

    monkeypatch.setattr(objective_module, "TRAIN_SITES_PER_CHUNK", 16 * 5)
    flow = small_flow().double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    trainer = Trainer(flow, TARGET.log_prob, TrainConfig(steps=1, batch_size=12))
    assert trainer.objective.micro_batches(16) == [5, 5, 2]
    state, weights = trainer.generator.get_state(), copy.deepcopy(flow.state_dict())
    trainer.train_step()
    accumulated = [p.grad.clone() for p in flow.parameters()]
    trainer.generator.set_state(state)
    flow.load_state_dict(weights)
    flow.zero_grad()
    parts = [flow.sample(n, trainer.generator) for n in (5, 5, 2)]
    x, log_q = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    (log_q - TARGET.log_prob(x)).mean().backward()
    for grad, p in zip(accumulated, flow.parameters(), strict=True):
        assert torch.allclose(grad, p.grad, atol=1e-12)


def forward_objective(**kwargs) -> Objective:
    config = LossConfig(forward=2.0, forward_samples=6, **kwargs)
    return Objective(small_flow(), TARGET.log_prob, config, 8, True, TARGET.exact_move)


def test_forward_term_is_the_weighted_nll_of_the_exact_chains_under_the_mixture():
    objective = forward_objective()
    generator = torch.Generator().manual_seed(2)
    term = objective.auxiliary_loss(0.0, generator, step=0)
    chains = objective.equilibrium
    assert chains.shape == (6, 4, 4)
    with torch.no_grad():
        log_q = torch.logsumexp(torch.stack([objective.flow.log_prob(chains),
                                             objective.flow.log_prob(-chains)]), 0) - math.log(2)
    assert torch.allclose(term, -2.0 * log_q.mean(), atol=1e-5)
    term.backward()
    assert all(p.grad is not None for p in objective.flow.parameters())
    objective.auxiliary_loss(0.0, generator, step=1)
    assert not torch.equal(objective.equilibrium, chains)  # one exact move per application


def test_forward_every_k_applies_the_term_and_moves_its_chains_on_every_kth_step_only():
    objective = forward_objective(forward_every=3)
    generator = torch.Generator().manual_seed(3)
    applied = []
    for step in range(7):
        before = objective.equilibrium
        term = objective.auxiliary_loss(0.0, generator, step)
        applied.append(term is not None)
        if term is None:
            assert objective.equilibrium is before
    assert applied == [False, False, True, False, False, True, False]


def test_forward_weight_decays_to_zero_and_needs_exact_moves():
    objective = forward_objective(forward_schedule="decay")
    assert objective.forward_weight(0.25) == pytest.approx(1.5)
    assert objective.auxiliary_loss(1.0, torch.Generator(), 0) is None
    with pytest.raises(ValueError, match="forward=2.0 needs a target with exact"):
        Objective(small_flow(), TARGET.log_prob, LossConfig(forward=2.0), 8, True)


def test_a_resumed_forward_term_continues_the_same_chains():
    objective = forward_objective()
    generator = torch.Generator().manual_seed(4)
    objective.auxiliary_loss(0.0, generator, 0)
    resumed = forward_objective()
    resumed.flow.load_state_dict(objective.flow.state_dict())
    resumed.load_state_dict(copy.deepcopy(objective.state_dict()))
    state = generator.get_state()
    expected = objective.auxiliary_loss(0.0, generator, 1)
    generator.set_state(state)
    assert torch.equal(resumed.auxiliary_loss(0.0, generator, 1), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_forward_term_trains_a_flow_on_a_gpu():
    trainer = Trainer(small_flow().to("cuda"), TARGET.log_prob,
                      TrainConfig(steps=4, batch_size=8), LossConfig(forward=1.0, forward_every=2),
                      z2_symmetric=True, exact_move=TARGET.exact_move)
    for _ in range(4):
        trainer.train_step()
    assert trainer.objective.equilibrium.device.type == "cuda"
