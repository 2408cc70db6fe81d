"""The stack model -> Terraform (filled in below)."""

from __future__ import annotations


def files(model) -> dict[str, str]:
    return {}
