#!/usr/bin/env bash
# Submit a sharded grading of a class to SLURM: an array of SHARDS tasks, then the merge, which
# starts only if every task succeeded (afterok).
#   deploy/slurm/submit.sh LAB SUBMISSIONS GRADES_DIR SHARDS [extra sbatch options...]
# e.g. deploy/slurm/submit.sh storage /shared/class/submissions /shared/class/grades 16 -p short
# The merged grades end up in GRADES_DIR/merged. CLOUDLABS_HOME (the checkout, after
# `make setup`) defaults to the checkout this script is in.
set -euo pipefail

if (( $# < 4 )); then
  echo "usage: $0 LAB SUBMISSIONS GRADES_DIR SHARDS [sbatch options...]" >&2
  exit 2
fi
lab=$1 submissions=$2 grades=$3 shards=$4
shift 4
if ! [[ "$shards" =~ ^[0-9]+$ ]] || (( shards < 1 )); then
  echo "SHARDS must be a whole number, 1 or more (got '$shards')" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
export LAB="$lab" SUBMISSIONS="$submissions" GRADES_DIR="$grades" SHARDS="$shards"
export CLOUDLABS_HOME="${CLOUDLABS_HOME:-$(cd "$here/../.." && pwd)}"
mkdir -p "$grades"

array=$(sbatch --parsable --export=ALL --array="0-$((shards - 1))" --chdir="$grades" "$@" \
        "$here/grade-array.sbatch")
array=${array%%;*} # --parsable prints "jobid" or "jobid;cluster"
merge=$(sbatch --parsable --export=ALL --dependency="afterok:$array" --chdir="$grades" "$@" \
        "$here/merge.sbatch")
echo "grading: array job $array ($shards tasks); merge: job ${merge%%;*} (after all succeed)"
echo "results: $grades/merged"
