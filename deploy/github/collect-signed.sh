#!/usr/bin/env bash
# Collect the signed results of every student repository and verify them.
#
#   CLOUDLABS_SIGNING_KEY=... deploy/github/collect-signed.sh ORG PREFIX LAB [OUT]
#
# For each repository ORG/<PREFIX><student>, it downloads the grades-<LAB> artifact of the
# latest successful run of the grading workflow on main into OUT/<student>/ (default
# collected/), then runs `cloudlabs verify-signatures LAB OUT`, which checks every result's
# signature and lab version and that it is in its own student's folder. It prints every
# student that fails or has no result; the exit code is 1 if any does.
#
# Needs: the GitHub CLI (`gh auth login` as someone who can read the student repositories), run
# from the top of a cloudlabs checkout at the same ref the workflow pins, after `make setup`.
# Settings: WORKFLOW (default grade.yml), BRANCH (default main), CLOUDLABS (the command).
set -euo pipefail

if (( $# < 3 || $# > 4 )); then
  echo "usage: $0 ORG PREFIX LAB [OUT]" >&2
  exit 2
fi
org=$1 prefix=$2 lab=$3 out=${4:-collected}
workflow=${WORKFLOW:-grade.yml}
branch=${BRANCH:-main}
cloudlabs=${CLOUDLABS:-.venv/bin/cloudlabs}

mkdir -p "$out"
missing=()
mapfile -t repos < <(gh repo list "$org" --limit 4000 --json name --jq '.[].name' | grep -F -- "$prefix" || true)
for repo in "${repos[@]}"; do
  [[ "$repo" == "$prefix"* ]] || continue
  student=${repo#"$prefix"}
  if ! [[ "$student" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]]; then
    echo "skipped $repo: $student is not a student id" >&2
    continue
  fi
  run=$(gh run list --repo "$org/$repo" --workflow "$workflow" --branch "$branch" \
        --status success --limit 1 --json databaseId --jq '.[0].databaseId // empty')
  rm -rf "${out:?}/$student"
  if [[ -z "$run" ]] || ! gh run download "$run" --repo "$org/$repo" \
       --name "grades-$lab" --dir "$out/$student"; then
    missing+=("$student")
    continue
  fi
  echo "collected $student (run $run)"
done

status=0
if [[ -n "$(find "$out" -path '*/results/*.json' -print -quit)" ]]; then
  "$cloudlabs" verify-signatures "$lab" "$out" || status=$?
else
  echo "no results collected in $out" >&2
  status=1
fi
if (( ${#missing[@]} )); then
  echo "no signed result: ${missing[*]}"
  status=1
fi
exit "$status"
