"""Tests of the failover layer: runbooks, their journal and notifiers."""
