"""Adapters, one package per provider; each imports only multiregion's core and its own SDKs."""
