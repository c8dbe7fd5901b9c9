"""Tests of segue.serving, one module per source module; shared helpers in ``support``."""
