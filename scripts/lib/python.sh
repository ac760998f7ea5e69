# shellcheck shell=bash
# A private Python environment for the test tools (schemathesis, selenium, Flask, ...).
# Source this file, then call:
#
#     python_ensure selenium==4.* flask
#
# The environment lives in .build-venv at the repository root (ignored by git, like .build),
# is made on first use with the system python3 (python3-venv is installed when missing),
# and only requirements that are not satisfied yet are fetched from PyPI. Afterwards
# "$PYTHON_VENV/bin/python" runs with them.

PYTHON_VENV=${PYTHON_VENV:-"$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)/.build-venv"}

python_ensure() {
    if [[ ! -x $PYTHON_VENV/bin/python ]]; then
        if ! python3 -m venv "$PYTHON_VENV" 2>/dev/null; then
            deps_ensure python3-venv || return 1
            python3 -m venv "$PYTHON_VENV" || return 1
        fi
    fi
    if (($# == 0)); then
        return 0
    fi
    # pip's resolver is slow even when all is installed: ask importlib first.
    if "$PYTHON_VENV/bin/python" - "$@" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version, PackageNotFoundError
from packaging.requirements import Requirement
for spec in sys.argv[1:]:
    req = Requirement(spec)
    try:
        if not req.specifier.contains(version(req.name), prereleases=True):
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
        return 0
    fi
    "$PYTHON_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "packaging" "$@"
}
