"""The tabular network: an embedding per categorical, concatenated with numerics, into an MLP."""

from __future__ import annotations

import torch
from torch import nn


class TabularNet(nn.Module):
    """Binary classifier returning logits. No batch-dependent layers, so a row scores the same
    alone or inside any batch (serving relies on that)."""

    def __init__(
        self,
        numeric_dim: int,
        cardinalities: list[int],
        embedding_dim: int,
        hidden_sizes: tuple[int, ...],
        dropout: float,
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(size, embedding_dim) for size in cardinalities)
        width = numeric_dim + embedding_dim * len(cardinalities)
        layers: list[nn.Module] = []
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        return self.head(numeric, self.embed(categorical))

    def embed(self, categorical: torch.Tensor) -> list[torch.Tensor]:
        """Each categorical feature's embedding vectors (rows x embedding_dim), in feature order."""
        return [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]

    def head(self, numeric: torch.Tensor, embedded: list[torch.Tensor]) -> torch.Tensor:
        """Logits from the encoded numbers and the embedding vectors (what attributions differentiate)."""
        return self.mlp(torch.cat([numeric, *embedded], dim=1)).squeeze(1)
