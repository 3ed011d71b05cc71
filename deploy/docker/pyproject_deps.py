"""Print the third-party requirements of pyproject.toml files, one per line.

The Dockerfile installs these in a layer of their own, before it copies the source, so an edit
to the code does not reinstall every dependency. Left out: torch (installed before, pinned, from
the PyTorch index of the image's flavour) and the project's own distributions (installed from
the source afterwards).

    python pyproject_deps.py pyproject.toml client/pyproject.toml --extras otel
"""

from __future__ import annotations

import argparse
import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

SKIP = {"torch"}


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"cannot read a distribution name from {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(paths: list[str], extras: list[str]) -> list[str]:
    projects = []
    for path in paths:
        with open(path, "rb") as f:
            projects.append(tomllib.load(f)["project"])
    own = {_name(p["name"]) for p in projects}
    out: list[str] = []
    for project in projects:
        reqs = list(project.get("dependencies", []))
        optional = project.get("optional-dependencies", {})
        for extra in extras:
            reqs += optional.get(extra, [])
        for req in reqs:
            if _name(req) in own or _name(req) in SKIP or req in out:
                continue
            out.append(req)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", nargs="+")
    parser.add_argument("--extras", default="", help="comma- or space-separated extras to include, e.g. otel")
    args = parser.parse_args(argv)
    extras = [e for e in re.split(r"[,\s]+", args.extras) if e]
    for req in requirements(args.pyproject, extras):
        print(req)
    return 0


if __name__ == "__main__":
    sys.exit(main())
