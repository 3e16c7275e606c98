"""Training sets: the labelled spine, point-in-time features and a temporal split."""
