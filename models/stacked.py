"""Networks of one shape stacked along a leading trial dimension, and the AdamW step for them.

A stack holds T copies of a `TabularNet` shape: each parameter gets a leading trial dimension, a
layer is one batched matmul over the trials, and one optimiser step updates every trial with its
own learning rate and weight decay. Each piece repeats what torch does for one network, operation
for operation, so a trial in a stack follows the path it follows alone:
- the loss gradient is the one torch's own losses hand back (`loss_gradient`);
- backpropagation runs the kernels autograd runs for one network (`training_gradient`);
- the AdamW update is torch's single-tensor AdamW with the per-trial scalars as tensors;
- dropout takes a mask per step that the caller draws as torch's CPU dropout draws it.
Products keep the orientation torch uses for one network, so they sum in the same order: a full
batch's gradient is bit for bit autograd's on the reference machine's kernels in the shapes tested,
a batch's last few rows agree to float32 rounding (`tests/model/test_stacked.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from models.network import TabularNet

# A stack's per-parameter tensors: the embeddings, the linear layers' weights, their biases.
_Parameters = tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]


def _linears(network: TabularNet) -> list[tuple[int, nn.Linear]]:
    return [(index, layer) for index, layer in enumerate(network.mlp) if isinstance(layer, nn.Linear)]


def dropout_of(network: TabularNet) -> float:
    """The network's dropout probability (0 when it has none)."""
    return next((float(layer.p) for layer in network.mlp if isinstance(layer, nn.Dropout)), 0.0)


def shape_of(network: TabularNet) -> tuple[object, ...]:
    """What must match for two networks to share a stack: every parameter's shape and the dropout."""
    return (tuple(tuple(p.shape) for p in network.parameters()), dropout_of(network))


class StackedNetworks:
    """T networks of one shape, their parameters side by side in one (trials x parameters) buffer.

    One buffer makes the optimiser step a handful of operations over every parameter at once,
    whatever the depth; `views` hands out one tensor per parameter."""

    def __init__(self, networks: list[TabularNet], device: torch.device) -> None:
        template = networks[0]
        if any(shape_of(n) != shape_of(template) for n in networks):
            raise ValueError("networks in a stack must share one shape")
        self.dropout = dropout_of(template)
        self.hidden_sizes = [layer.out_features for _, layer in _linears(template)[:-1]]
        self.embedding_count = len(template.embeddings)
        names = [f"embeddings.{i}.weight" for i in range(self.embedding_count)]
        names += [f"mlp.{index}.{kind}" for kind in ("weight", "bias") for index, _ in _linears(template)]
        states = [n.state_dict() for n in networks]
        self.layout = [(name, tuple(states[0][name].shape)) for name in names]
        self._offset_cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}
        self.flat = torch.stack(
            [torch.cat([state[name].detach().reshape(-1) for name in names]) for state in states]
        ).to(device)
        self._gradient = torch.empty(0)  # reused step to step by `training_gradient`
        self._gradient_parameters: _Parameters = ([], [], [])

    @property
    def flat(self) -> torch.Tensor:
        """Every trial's parameters, one row per trial (updated in place by the optimiser)."""
        return self._flat

    @flat.setter
    def flat(self, buffer: torch.Tensor) -> None:
        # The per-parameter views are built once per buffer, not twice per step: the optimiser
        # updates the buffer in place, so they stay valid until the buffer itself is replaced.
        self._flat = buffer
        self._parameters = self._split(self.views(buffer))

    @property
    def trials(self) -> int:
        return int(self.flat.shape[0])

    def views(self, buffer: torch.Tensor) -> list[torch.Tensor]:
        """A (trials x parameters) buffer as one view per parameter (trials x its shape)."""
        views, offset = [], 0
        for _, shape in self.layout:
            size = math.prod(shape)
            views.append(buffer[:, offset : offset + size].view(self.trials, *shape))
            offset += size
        return views

    def _gradient_buffer(self) -> tuple[torch.Tensor, _Parameters]:
        """The gradient's (trials x parameters) buffer and its per-parameter views, reused step to
        step while the stack keeps its size."""
        if self._gradient.shape != self.flat.shape:
            self._gradient = torch.empty_like(self.flat)
            self._gradient_parameters = self._split(self.views(self._gradient))
        return self._gradient, self._gradient_parameters

    def _split(self, tensors: list[torch.Tensor]) -> _Parameters:
        """Per-parameter tensors (layout order) as embeddings, weights and biases."""
        layers = (len(tensors) - self.embedding_count) // 2
        return (
            tensors[: self.embedding_count],
            tensors[self.embedding_count : self.embedding_count + layers],
            tensors[self.embedding_count + layers :],
        )

    def _offsets(self, size: int, device: torch.device) -> torch.Tensor:
        key = (self.trials, size, device)
        if key not in self._offset_cache:
            self._offset_cache[key] = torch.arange(self.trials, device=device).unsqueeze(1) * size
        return self._offset_cache[key]

    def _input(
        self, embeddings: list[torch.Tensor], numeric: torch.Tensor, categorical: torch.Tensor
    ) -> torch.Tensor:
        """The first layer's input (trials x rows x features: the numerics, then each embedding, as
        `TabularNet` concatenates them). Each trial's embedding rows are gathered from its own table
        in place (a table is a strided view of the buffer; flattening the trials would copy it)."""
        trials, rows = self.trials, numeric.shape[0]
        parts = [numeric.unsqueeze(0).expand(trials, rows, numeric.shape[1])]
        parts += [weight.index_select(1, categorical[:, i]) for i, weight in enumerate(embeddings)]
        return torch.cat(parts, dim=2)

    def training_gradient(
        self,
        numeric: torch.Tensor,
        categorical: torch.Tensor,
        labels: torch.Tensor,
        task: str,
        masks: list[torch.Tensor] | None,
        batched: bool = True,
    ) -> torch.Tensor:
        """The gradient (shaped like `flat`) of each trial's mean loss over one batch.

        Backpropagation written out, each step the kernel torch's autograd runs for one network
        (`threshold_backward` for ReLU, the mask product for dropout, `embedding_dense_backward`'s sums,
        the products in the orientations autograd's `addmm` backward uses): the same numbers,
        without building a graph each step. `batched=False` runs each trial's products as its own
        network runs them (`stacked_linear`, `_weight_gradient`, `_input_gradient`), for a batch's
        last few rows, where a batched product can round differently; there the gradient agrees
        with autograd's to float32 rounding, not bit for bit (a small product's kernel path depends
        on where a trial's operands sit in the stack's buffer)."""
        with torch.no_grad():
            embeddings, weights, biases = self._parameters
            hidden = self._input(embeddings, numeric, categorical)
            inputs, activations = [], []
            for layer, (weight, bias) in enumerate(zip(weights[:-1], biases[:-1], strict=True)):
                inputs.append(hidden)
                hidden = stacked_linear(hidden, weight, bias, batched).relu()
                activations.append(hidden)
                if masks is not None:
                    hidden = hidden * masks[layer]
            inputs.append(hidden)
            logits = stacked_linear(hidden, weights[-1], biases[-1], batched).squeeze(2)

            gradient, (grad_embeddings, grad_weights, grad_biases) = self._gradient_buffer()
            grad = loss_gradient(logits, labels, task).unsqueeze(2)
            for layer in reversed(range(len(weights))):
                grad_weights[layer].copy_(_weight_gradient(grad, inputs[layer], batched))
                grad_biases[layer].copy_(_bias_gradient(grad, batched))
                if layer == 0 and not embeddings:
                    break
                grad = _input_gradient(grad, weights[layer], batched)
                if layer > 0:
                    if masks is not None:
                        grad = grad * masks[layer - 1]
                    grad = torch.ops.aten.threshold_backward(grad, activations[layer - 1], 0)
            width = numeric.shape[1]
            for position, (weight, target) in enumerate(zip(embeddings, grad_embeddings, strict=True)):
                size, dim = weight.shape[1], weight.shape[2]
                piece = grad[:, :, width : width + dim]
                width += dim
                if target.device.type == "cpu":
                    # Each row's gradient added to its category's row, row after row, for every
                    # trial at once: the sums `embedding_dense_backward` forms on the CPU, in the
                    # same order, written straight into the buffer (2 to 3x faster than the kernel
                    # plus a copy). On CUDA that would be atomic adds, in no fixed order.
                    target.zero_().index_add_(1, categorical[:, position], piece)
                    continue
                index = categorical[:, position].unsqueeze(0) + self._offsets(size, target.device)
                summed = torch.ops.aten.embedding_dense_backward(piece, index, self.trials * size, -1, False)
                target.copy_(summed.reshape(self.trials, size, dim))
            return gradient

    def __call__(
        self, numeric: torch.Tensor, categorical: torch.Tensor, batched: bool = True
    ) -> torch.Tensor:
        """Logits (trials x rows) without dropout, for evaluation. `batched=False` runs each trial's
        linear layers as its own network runs them (`stacked_linear`)."""
        with torch.no_grad():
            embeddings, weights, biases = self._parameters
            hidden = self._input(embeddings, numeric, categorical)
            for layer, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
                hidden = stacked_linear(hidden, weight, bias, batched)
                if layer < len(weights) - 1:
                    hidden = hidden.relu()
            return hidden.squeeze(2)

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the trials at `rows` (in that order)."""
        self.flat = self.flat.index_select(0, rows)

    def state_of(self, trial: int) -> dict[str, torch.Tensor]:
        """One trial's weights under a `TabularNet`'s state-dict names (copies, on the CPU)."""
        row, state, offset = self.flat[trial].detach().cpu(), {}, 0
        for name, shape in self.layout:
            size = math.prod(shape)
            state[name] = row[offset : offset + size].reshape(shape).clone()
            offset += size
        return state


def _batched_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x @ W^T + b for every trial at once, each product in the orientation torch uses for one
    network's linear layer so that it sums in the same order (`W @ x^T` for one output). Measured on
    the reference machine's CPU kernels: bit for bit equal to `F.linear` per trial for full batches
    of 48, 64 and 256 rows and the example's layer shapes; a few odd rows can round
    differently. (The backward of `training_gradient` keeps the weight's gradient as `g^T @ x` for
    the same reason.)"""
    if weight.shape[1] == 1:
        return torch.baddbmm(bias.unsqueeze(2), weight, x.transpose(1, 2)).transpose(1, 2)
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def stacked_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, batched: bool = True
) -> torch.Tensor:
    """Each trial's linear layer: (trials x rows x in) -> (trials x rows x out). Batched, one
    product for all trials; otherwise one `F.linear` per trial, exactly what a single network
    computes, at the cost of a call per trial (the loop uses it for a batch's last few rows)."""
    if batched:
        return _batched_product(x, weight, bias)
    return _each_trial(nn.functional.linear, x, weight, bias)


def _weight_gradient(grad: torch.Tensor, inputs: torch.Tensor, batched: bool) -> torch.Tensor:
    """Each trial's weight gradient, `g^T @ x`: autograd's orientation for a linear layer's weight
    (its `addmm` backward computes the transposed weight's gradient as `(g^T @ x)^T`)."""
    if batched:
        return torch.bmm(grad.transpose(1, 2), inputs)
    return _each_trial(lambda g, x: g.t().mm(x), grad, inputs)


def _bias_gradient(grad: torch.Tensor, batched: bool) -> torch.Tensor:
    """Each trial's bias gradient: its output gradient summed over the rows."""
    if batched:
        return grad.sum(1)
    return _each_trial(lambda g: g.sum(0), grad)


def _input_gradient(grad: torch.Tensor, weight: torch.Tensor, batched: bool) -> torch.Tensor:
    """Each trial's gradient with respect to a linear layer's input, `g @ W`."""
    if batched:
        return torch.bmm(grad, weight)
    return _each_trial(torch.mm, grad, weight)


def _each_trial(operation: Callable[..., torch.Tensor], *stacked: torch.Tensor) -> torch.Tensor:
    """`operation` on each trial's slice of the `stacked` tensors alone, as one network runs it,
    the answers stacked again along the trial dimension."""
    return torch.stack([operation(*(tensor[t] for tensor in stacked)) for t in range(stacked[0].shape[0])])


def dropout_masks(
    rows: int, widths: list[int], p: float, generator: torch.Generator, device: torch.device
) -> list[torch.Tensor] | None:
    """The scaled masks torch's CPU dropout draws for one training step, layer by layer
    (`torch.empty_like(input).bernoulli_(1 - p)`, divided by 1 - p)."""
    if p == 0.0:
        return None
    return [
        torch.empty(rows, width).bernoulli_(1 - p, generator=generator).div_(1 - p).to(device)
        for width in widths
    ]


def loss_gradient(logits: torch.Tensor, labels: torch.Tensor, task: str) -> torch.Tensor:
    """The gradient of each trial's mean loss over the batch with respect to its logits (trials x
    rows), as torch's losses compute it: `(sigmoid(x) - y) / n` for binary cross-entropy on logits
    (`binary_cross_entropy_with_logits`), `2/n * (x - y)` for squared error (`mse_loss`)."""
    if task not in ("binary", "regression"):
        raise ValueError(f"unknown task {task!r}")
    rows = logits.shape[1]
    with torch.no_grad():
        if task == "binary":
            return (logits.sigmoid() - labels).div_(rows)
        return (logits - labels) * (2.0 / rows)


class StackedAdamW:
    """torch's single-tensor AdamW (betas 0.9/0.999, eps 1e-8) over a stack's buffer, with a
    learning rate and a weight decay per trial."""

    def __init__(
        self,
        flat: torch.Tensor,
        learning_rates: list[float],
        weight_decays: list[float],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.steps = 0
        self.learning_rates = list(learning_rates)
        self.weight_decays = list(weight_decays)
        self.exp_avg = torch.zeros_like(flat)
        self.exp_avg_sq = torch.zeros_like(flat)
        self._denom = self._update = torch.empty(0)
        self._decay: torch.Tensor | None = None  # per-trial scalars, built once per set of trials
        self._rates = torch.empty(0)

    def _per_trial(self, values: list[float], like: torch.Tensor) -> torch.Tensor:
        # From Python floats (double precision, as torch computes its scalars), rounded once.
        return torch.tensor(values, dtype=torch.float64).to(like.device, like.dtype).unsqueeze(1)

    def _step_scalars(self, flat: torch.Tensor, bias_correction1: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Each trial's decay factor `1 - lr * wd` and step size `-(lr / bias_correction1)`, rounded
        from double precision as torch rounds its Python scalars (the division in float64 is the
        same IEEE operation as Python's)."""
        if self._decay is None:
            decay = [1 - lr * wd for lr, wd in zip(self.learning_rates, self.weight_decays, strict=True)]
            self._decay = self._per_trial(decay, flat)
            self._rates = torch.tensor(
                self.learning_rates, dtype=torch.float64, device=flat.device
            ).unsqueeze(1)
        return self._decay, torch.div(self._rates, bias_correction1).neg_().to(flat.dtype)

    def step(self, flat: torch.Tensor, grad: torch.Tensor) -> None:
        """One update of every trial's parameters (`flat`, in place) from their gradient."""
        self.steps += 1
        bias_correction1 = 1 - self.beta1**self.steps
        bias_correction2_sqrt = (1 - self.beta2**self.steps) ** 0.5
        decay, step_size = self._step_scalars(flat, bias_correction1)
        if self._denom.shape != flat.shape:  # scratch reused step to step: no fresh buffers per step
            self._denom, self._update = torch.empty_like(flat), torch.empty_like(flat)
        denom, update = self._denom, self._update
        with torch.no_grad():
            flat.mul_(decay)
            self.exp_avg.lerp_(grad, 1 - self.beta1)
            self.exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
            torch.sqrt(self.exp_avg_sq, out=denom).div_(bias_correction2_sqrt).add_(self.eps)
            # param + (-step * exp_avg) / denom, in the order torch's addcdiv_ computes it
            torch.mul(self.exp_avg, step_size, out=update).div_(denom)
            flat.add_(update)

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the trials at `rows` (in that order), as `StackedNetworks.keep` does."""
        kept = rows.tolist()
        self.learning_rates = [self.learning_rates[i] for i in kept]
        self.weight_decays = [self.weight_decays[i] for i in kept]
        self._decay = None
        self.exp_avg = self.exp_avg.index_select(0, rows)
        self.exp_avg_sq = self.exp_avg_sq.index_select(0, rows)
