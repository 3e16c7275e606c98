"""A/B experiments: a challenger version on a sticky share of the traffic, read out from the
outcomes that arrive later with a test that stays valid however often it is looked at."""
