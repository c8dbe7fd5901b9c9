"""Prometheus collectors, the event log of served lists, quality and drift reports."""
