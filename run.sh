#!/bin/sh
# One entry point for users and CI.
#
#   sh run.sh                         ELMo pretraining on the built-in corpus (configs/elmo.yaml)
#   sh run.sh test [PYTEST_ARGS]      the test suite
#   sh run.sh [JOB] [-n N] [--nnodes M --master HOST:PORT] [-o key=value ...] [--resume | --resume-from DIR] [--show]
#                                     the job of configs/JOB.yaml (default: elmo), run by
#                                     `python -m engine --config configs/JOB.yaml`; the
#                                     recipe's `job:` key names the job class
#
# -n N runs N data-parallel processes (python -m paddle.distributed.launch);
# --nnodes M --master HOST:PORT, given alike on M machines, joins them (N each).
# Without -n: $NPROC if set, else one process per device in
# $CUDA_VISIBLE_DEVICES (as the fluid release), else 1.
#
# The first call creates .venv and installs the project into it (with the
# test, onnx and plot extras for `test`, plot for jobs); later calls reuse it until
# pyproject.toml changes.
set -eu
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"

ensure_venv() {
    extras="$1"
    if [ ! -x "$PY" ]; then
        python3 -m venv "$VENV"
    fi
    # An install with more extras (the test one) serves a job too.
    for stamp in "$VENV"/.installed*; do
        if [ -f "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ] && covers "$stamp" "$extras"; then
            return 0
        fi
    done
    "$PY" -m pip install --quiet --disable-pip-version-check -e ".$extras"
    touch "$VENV/.installed$extras"
}

covers() {  # covers STAMP [a,b]: the stamp's name lists every extra a, b
    for extra in $(echo "$2" | tr -d '[]' | tr ',' ' '); do
        case "$1" in
            *"$extra"*) ;;
            *) return 1 ;;
        esac
    done
}

# Paddle's C++ start-up chatter (executor notices) says nothing to users.
export GLOG_minloglevel="${GLOG_minloglevel:-2}"

job=elmo
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    job="$1"
    shift
fi

if [ "$job" = test ]; then
    ensure_venv "[test,onnx,plot]"
    "$PY" -m ruff check .
    exec "$PY" -m pytest "$@"
fi

config="configs/$job.yaml"
if [ ! -f "$config" ]; then
    echo "unknown job '$job': no $config (jobs: $(ls configs | sed 's/\.yaml$//' | tr '\n' ' '))" >&2
    exit 2
fi

nproc="${NPROC:-}"
nnodes="${PADDLE_NNODES:-1}"
master="${PADDLE_MASTER:-}"
while [ $# -ge 2 ]; do
    case "$1" in
        -n) nproc="$2" ;;
        --nnodes) nnodes="$2" ;;
        --master) master="$2" ;;
        *) break ;;
    esac
    shift 2
done
if [ -z "$nproc" ] && [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
    nproc=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c .)
fi
nproc="${nproc:-1}"
if [ "$nnodes" -gt 1 ] && [ -z "$master" ]; then
    echo "--nnodes $nnodes needs --master HOST:PORT (the same on every machine)" >&2
    exit 2
fi

ensure_venv "[plot]"
if [ "$nnodes" -gt 1 ]; then
    # Several machines: the same command on each, with the same --master (any one machine's
    # HOST:PORT); the launcher numbers the ranks. This machine's logs are in output/launch/JOB/.
    exec "$PY" -m paddle.distributed.launch --master "$master" --nnodes "$nnodes" --nproc_per_node "$nproc" \
        --log_dir "output/launch/$job" "$PY" -m engine --config "$config" "$@"
fi
if [ "$nproc" -gt 1 ]; then
    # Rank 0's output is shown here; every rank's log is in output/launch/JOB/.
    exec "$PY" -m paddle.distributed.launch --nproc_per_node "$nproc" --log_dir "output/launch/$job" \
        "$PY" -m engine --config "$config" "$@"
fi
exec "$PY" -m engine --config "$config" "$@"
