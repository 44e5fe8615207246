"""The cluster-wide control plane: operators write `dita.control`, every kernel
listens, validates and applies, and reports what it applied in `dita.kernels`."""

from dita.controlplane.entries import (
    ControlEntry,
    ControlRefusal,
    EffectiveControl,
    effective_control,
    parse_entry,
)
from dita.controlplane.signing import canonical_bytes, sign_entry, verify_signature

__all__ = [
    "ControlEntry",
    "ControlRefusal",
    "EffectiveControl",
    "canonical_bytes",
    "effective_control",
    "parse_entry",
    "sign_entry",
    "verify_signature",
]
