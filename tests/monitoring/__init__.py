"""Tests of segue.monitoring, one module per source module."""
