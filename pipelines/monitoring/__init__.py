"""Model monitoring: drift between a training baseline and what the model sees in production."""
