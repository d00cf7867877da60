"""Testing support: the contract suite every provider passes, emulator launchers and fakes.

Third-party providers run the suite by subclassing the contract classes in
``multiregion.testing.contract`` and supplying a harness fixture (see docs/contract-suite.md).
"""
