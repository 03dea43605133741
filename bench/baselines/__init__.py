"""Consumers hfbus is compared with; dev-only dependencies, installed by the bench when missing."""

from __future__ import annotations
