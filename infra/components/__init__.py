"""One ComponentResource per platform capability."""
