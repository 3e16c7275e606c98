"""Expected outcomes that end a command with one clear line; kept free of heavy imports so that the
CLI can recognise them without loading torch, Great Expectations or the lake."""

from __future__ import annotations


class BatchRejected(Exception):
    """The batch failed validation and was quarantined; the message lists what failed and where."""

    def __init__(self, message: str, quarantine_uri: str, report_uri: str) -> None:
        super().__init__(message)
        self.quarantine_uri = quarantine_uri
        self.report_uri = report_uri


class NoCuratedData(Exception):
    """Training was asked for but the curated table is empty."""


class BatchInferenceError(Exception):
    """A batch-inference run cannot score what was asked (one line naming the model, table or snapshot)."""


class DuplicateFeatureRows(BatchInferenceError):
    """The feature table holds one (entity, feature time) more than once, so the as-of answer for a
    row at that instant is ambiguous."""


class ExperimentError(Exception):
    """An experiment command that cannot be carried out (one line naming the option and value)."""
