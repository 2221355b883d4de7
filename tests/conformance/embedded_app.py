"""The same conformance services embedded in `durio serve`: `restate` is bound to durio first."""

import importlib

import durio

durio.install_as_restate()
# Imported only now, so that its `import restate` is durio.
services = importlib.import_module("tests.conformance.services").services
