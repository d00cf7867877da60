"""Failover on top of the interfaces: decisions with hysteresis, controllers, runbooks."""
