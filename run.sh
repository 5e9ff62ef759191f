#!/bin/sh
# One entry point for users and CI.
#
#   sh run.sh                         ELMo pretraining on the built-in corpus (configs/elmo.yaml)
#   sh run.sh test [PYTEST_ARGS]      the test suite
#   sh run.sh JOB [-o key=value ...] [--resume]
#                                     the job configured in configs/JOB.yaml
#
# The first call creates .venv and installs the project into it (with the
# test extras for `test`); later calls reuse it until pyproject.toml changes.
set -eu
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"

ensure_venv() {
    extras="$1"
    if [ ! -x "$PY" ]; then
        python3 -m venv "$VENV"
    fi
    stamp="$VENV/.installed$extras"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        "$PY" -m pip install --quiet --disable-pip-version-check -e ".$extras"
        touch "$stamp"
    fi
}

# Paddle's C++ start-up chatter (executor notices) says nothing to users.
export GLOG_minloglevel="${GLOG_minloglevel:-2}"

job="${1:-elmo}"
[ $# -gt 0 ] && shift

case "$job" in
    test)
        ensure_venv "[test]"
        exec "$PY" -m pytest "$@"
        ;;
    -*)
        echo "usage: sh run.sh [test | JOB] [-o key=value ...]" >&2
        exit 2
        ;;
esac

config="configs/$job.yaml"
if [ ! -f "$config" ]; then
    echo "unknown job '$job': no $config (jobs: $(ls configs | sed 's/\.yaml$//' | tr '\n' ' '))" >&2
    exit 2
fi
case "$job" in
    elmo*) module=bilm.train ;;
    *)
        echo "no training entry point is registered for '$job' in run.sh" >&2
        exit 2
        ;;
esac

ensure_venv ""
exec "$PY" -m "$module" --config "$config" "$@"
