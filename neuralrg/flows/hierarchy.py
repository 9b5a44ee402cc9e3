"""Hierarchical bijector: one coupling block per patch layer of a layout.

Each block's weights are shared by every patch of its layer (like a stride-2
convolution). Patches are gathered with precomputed index tensors, transformed
as one ``(batch * n_patches, patch_size)`` tensor and scattered back, so there
is no Python loop over patches.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from torch import Tensor, nn

from neuralrg.flows.bijector import Bijector
from neuralrg.flows.layouts import PatchLayer, latent_scales

BlockFactory = Callable[[PatchLayer], Bijector]  # a block may depend on its layer


class HierarchicalBijector(Bijector):
    """Applies ``blocks[k]`` to every patch of ``layers[k]``.

    ``inverse`` (x -> z, the RG direction) runs the layers in order, finest
    first; ``forward`` (z -> x, generation) runs them in reverse. Inputs have
    shape ``(batch, *lattice_shape)``.

    >>> import torch
    >>> from neuralrg.flows.layouts import mera_layout
    >>> from neuralrg.flows.coupling import PatchCoupling
    >>> bij = HierarchicalBijector((4, 4), mera_layout(4, 2, 1),
    ...                            lambda layer: PatchCoupling(layer.patch_size))
    >>> x, log_det = bij(torch.randn(3, 4, 4))
    >>> x.shape, log_det.shape
    (torch.Size([3, 4, 4]), torch.Size([3]))
    """

    def __init__(
        self, lattice_shape: Sequence[int], layers: list[PatchLayer], make_block: BlockFactory
    ):
        super().__init__()
        self.lattice_shape = tuple(lattice_shape)
        self.n_sites = math.prod(self.lattice_shape)
        self.kinds = [layer.kind for layer in layers]
        self.scales = [layer.scale for layer in layers]
        self.blocks = nn.ModuleList(make_block(layer) for layer in layers)
        for k, layer in enumerate(layers):
            self.register_buffer(f"patches_{k}", layer.indices.clone(), persistent=False)
        for s, group in enumerate(latent_scales(layers, self.n_sites)):
            self.register_buffer(f"latents_{s}", group, persistent=False)
        self.n_latent_groups = s + 1

    def patches(self, k: int) -> Tensor:
        """Flat site indices of layer ``k``'s patches, ``(n_patches, patch_size)``."""
        return getattr(self, f"patches_{k}")

    def latent_groups(self) -> list[Tensor]:
        """Flat site indices of the latents of each scale, finest first."""
        return [getattr(self, f"latents_{s}") for s in range(self.n_latent_groups)]

    def _apply_layer(self, k: int, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        indices = self.patches(k)
        batch, (n_patches, patch_size) = x.shape[0], indices.shape
        flat = indices.reshape(-1)
        patches = x[:, flat].reshape(batch * n_patches, patch_size)
        block = self.blocks[k]
        out, log_det = block.inverse(patches) if inverse else block(patches)
        x = x.index_copy(1, flat, out.reshape(batch, n_patches * patch_size))
        return x, log_det.reshape(batch, n_patches).sum(1)

    def _run(self, x: Tensor, order: Sequence[int], inverse: bool) -> tuple[Tensor, Tensor]:
        batch = x.shape[0]
        x = x.reshape(batch, self.n_sites)
        log_det = x.new_zeros(batch)
        for k in order:
            x, ld = self._apply_layer(k, x, inverse)
            log_det = log_det + ld
        return x.reshape(batch, *self.lattice_shape), log_det

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._run(z, reversed(range(len(self.blocks))), inverse=False)

    def generation_states(self, z: Tensor) -> list[tuple[int, Tensor]]:
        """``(layer index, configuration after that layer)`` for every layer, in generation
        order (coarsest first); the last state is x = g(z)."""
        batch, states = z.shape[0], []
        x = z.reshape(batch, self.n_sites)
        for k in reversed(range(len(self.blocks))):
            x, _ = self._apply_layer(k, x, inverse=False)
            states.append((k, x.reshape(batch, *self.lattice_shape)))
        return states

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._run(x, range(len(self.blocks)), inverse=True)
