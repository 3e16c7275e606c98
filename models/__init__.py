"""The torch model for the tabular use case: encoding, network, training job and model bundle."""
