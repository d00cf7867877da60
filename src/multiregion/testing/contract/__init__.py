"""The contract suite: each interface's behaviour stated once, run by every provider.

Subclass ``StoreContract``, ``BucketContract``, ``ProbeContract`` or ``RouterContract`` in a test
module and give the harness fixture; see docs/contract-suite.md.
"""
