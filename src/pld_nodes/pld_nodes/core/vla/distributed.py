"""Data-parallel training under ``torchrun`` with plain ``torch.distributed``.

Each rank computes the loss on its own slice of the global batch; gradients are averaged with
one all-reduce per parameter before clipping and the optimiser step, so every replica applies
the same update and the result equals single-process training on the full batch (up to float
summation order and the per-rank flow noise; masked-mean losses are reweighted by each rank's
share of the valid steps, see :meth:`DistContext.weight_share`).
Rank 0 alone writes checkpoints and metrics.
We do not wrap the model in ``DistributedDataParallel`` because SFT calls ``model.loss``
rather than ``forward``, which DDP's gradient hooks key on.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job (``world_size == 1``: not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This rank's contiguous slice of the global batch (sizes must divide evenly)."""
        if len(indices) % self.world_size:
            raise ValueError(
                f"batch of {len(indices)} does not split evenly over {self.world_size} ranks"
            )
        per = len(indices) // self.world_size
        return indices[self.rank * per : (self.rank + 1) * per]

    def device(self, requested: str) -> str:
        """``cuda`` becomes this rank's GPU (``cuda:<local_rank>``); anything else is kept."""
        return f"cuda:{self.local_rank}" if requested == "cuda" and self.enabled else requested

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        if not self.enabled:
            return
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad.div_(self.world_size)

    def weight_share(self, local_weight: torch.Tensor) -> torch.Tensor:
        """Factor that turns this rank's weighted-mean loss into its share of the global one.

        The SFT losses are masked means (sum of w * err / sum of w); ranks hold different mask
        sums, so averaging the per-rank means would overweight ranks with few valid steps.
        Scaling by ``world * local_w / global_w`` makes the averaged gradient the global mean's.
        """
        if not self.enabled:
            return torch.ones((), dtype=local_weight.dtype, device=local_weight.device)
        total = local_weight.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return local_weight.detach() * self.world_size / total

    def mean(self, value: float, device: str = "cpu") -> float:
        """Mean of a scalar over ranks (the logged loss is the global batch's)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item()) / self.world_size

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def check_in_sync(self, model: torch.nn.Module) -> None:
        """Raise if the replicas' weights differ (a bug would silently train N models)."""
        if not self.enabled:
            return
        digest = hashlib.sha256()
        for v in model.state_dict().values():
            digest.update(v.detach().cpu().contiguous().numpy().tobytes())
        mine = digest.hexdigest()
        everyone: list[str | None] = [None] * self.world_size
        dist.all_gather_object(everyone, mine)
        if len(set(everyone)) != 1:
            raise RuntimeError(f"data-parallel replicas diverged: weight hashes {everyone}")


def init_from_env(device: str = "cpu") -> DistContext:
    """The context torchrun describes in WORLD_SIZE/RANK/LOCAL_RANK; joins the process group
    (gloo on CPU, nccl on CUDA) once. Without torchrun: a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    ctx = DistContext(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
        _LOG.info("rank %d/%d joined the %s process group", ctx.rank, world, backend)
    return ctx
