"""Drills: inject a fault, measure detection, switch, RTO and RPO, fail back, report."""
