"""Data validation with Great Expectations 1.x, derived from the dataset spec."""
