"""The sweep: a model per segment times a hyperparameter search, run in chunks of trials."""
