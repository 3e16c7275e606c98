"""Evaluation: metrics overall and per slice, absolute and relative gates, an HTML report."""
