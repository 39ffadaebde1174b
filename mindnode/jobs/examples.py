"""Example job specs bundled with the package (`mindnode/jobs/examples/*.json`), so an installed
node has them: `mindnode job examples` lists them; `mindnode job submit NAME` takes a name."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mindnode.jobs import spec as job_spec
from mindnode.jobs.errors import JobSpecError


def _dir():
    return resources.files("mindnode.jobs") / "examples"


def names() -> list[str]:
    return sorted(p.name[:-5] for p in _dir().iterdir() if p.name.endswith(".json"))


def text(name: str) -> bytes:
    f = _dir() / f"{name}.json"
    if not f.is_file():
        raise JobSpecError(f"no bundled example {name!r} (bundled: {', '.join(names())})")
    return f.read_bytes()


def resolve(name_or_path: str) -> job_spec.JobSpec:
    """A bundled example's name, or a path to a spec file (a path wins when both exist)."""
    p = Path(name_or_path)
    if p.exists() or name_or_path.endswith(".json") or "/" in name_or_path:
        return job_spec.load(p)
    if name_or_path in names():
        return job_spec.parse(text(name_or_path), f"example {name_or_path}")
    raise JobSpecError(f"{name_or_path!r} is neither a spec file nor a bundled example "
                       f"(bundled: {', '.join(names())})")
