"""Serving: the inference handler and the HTTP app with the SageMaker inference contract."""
