"""Errors of mindnode's job tooling (spec files, examples, the benchmark)."""

from mindnode.errors import MindnodeError


class JobSpecError(MindnodeError):
    """A job spec file is unreadable or invalid; the message names the field and what to change."""


class BenchmarkError(MindnodeError):
    """The provider benchmark could not run (e.g. torch is not installed)."""


class EvidenceError(MindnodeError):
    """An evidence bundle (or a worker's signed checkpoint list) is malformed, oversized, for another
    job, or not signed by the worker it names; the message says which."""
