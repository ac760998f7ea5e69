# shellcheck shell=bash
# Installs missing Debian packages. Source this file, then call:
#
#     deps_ensure redis-server redis-tools libhiredis-dev
#
# Only packages that are not installed yet are installed; `apt-get update` runs
# at most once per shell, and only when something is missing. Works as root or
# through sudo (non-interactive `sudo -n` when stdin is not a terminal).

DEPS_APT_UPDATED=${DEPS_APT_UPDATED:-0}

# deps_is_installed PACKAGE: true when dpkg reports PACKAGE fully installed.
deps_is_installed() {
    local status
    status=$(dpkg-query --show --showformat='${Status}' "$1" 2>/dev/null) || return 1
    [[ $status == "install ok installed" ]]
}

# deps_ensure PACKAGE...: installs the PACKAGEs that are missing.
deps_ensure() {
    local pkg
    local -a missing=() sudo=()

    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "deps: dpkg not found (not Debian/Ubuntu?); make sure these are installed: $*" >&2
        return 0
    fi

    for pkg in "$@"; do
        deps_is_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi

    if ((EUID != 0)); then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "deps: missing packages (${missing[*]}), and not root and no sudo to install them" >&2
            return 1
        fi
        if [[ -t 0 ]]; then
            sudo=(sudo)
        else
            sudo=(sudo -n)
        fi
    fi

    echo "deps: installing ${missing[*]}" >&2
    if [[ $DEPS_APT_UPDATED != 1 ]]; then
        "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update || return 1
        DEPS_APT_UPDATED=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" || return 1

    for pkg in "${missing[@]}"; do
        if ! deps_is_installed "$pkg"; then
            echo "deps: $pkg is still not installed after apt-get install" >&2
            return 1
        fi
    done
}
