"""The platform's CrossGuard policy pack, usable offline over `mlops plan` inventories.

Importing this package never builds the PolicyPack (that starts a gRPC server and blocks): only
`policies/__main__.py`, run by the Pulumi CLI, does.
"""
