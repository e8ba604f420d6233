#!/usr/bin/env bash
# Runs one distributed squall run on Kubernetes and exits with its verdict.
#
#   deploy/kubernetes/run.sh RUN_ID SHARDS [SCENARIO.yaml]
#
#   RUN_ID    names the run: its Jobs, its ConfigMap and /reports/RUN_ID/ on the volume
#             (lowercase letters, digits and '-', at most 40 characters; new for each run)
#   SHARDS    how many pods (shards) to split the clients over
#   SCENARIO  the scenario file to run (default: the one in shards/scenario.yaml)
#
# Environment: SQUALL_IMAGE (default squall:latest), NAMESPACE (default: the context's),
# TIMEOUT in seconds for each of the two Jobs (default 3600), KUBECTL (default kubectl).
#
# Steps: the reports volume (once), the shards Job (an Indexed Job of SHARDS pods), a
# wait until it has finished, then the merge Job and a wait for it. The exit code is the
# merge's, like `squall run`'s: 0 every threshold held on the merged run, 1 a threshold
# failed, 2 bad input (a flag, the scenario), 3 could not run (a shard failed, a timeout).
# Needs kubectl with its built-in kustomize (tried with kubectl 1.32, kustomize v5.5.0)
# and Kubernetes 1.29 or newer (backoffLimitPerIndex, FailIndex).
set -euo pipefail

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] && [ $# -le 3 ] || usage
run_id=$1
shards=$2
scenario=${3:-}
image=${SQUALL_IMAGE:-squall:latest}
timeout=${TIMEOUT:-3600}
kubectl=${KUBECTL:-kubectl}
here=$(cd "$(dirname "$0")" && pwd)

if ! [[ $run_id =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || [ ${#run_id} -gt 40 ]; then
    echo "error: RUN_ID $run_id: lowercase letters, digits and '-', at most 40 characters" >&2
    exit 2
fi
# An Indexed Job takes up to 100,000 completions.
if ! [[ $shards =~ ^[1-9][0-9]{0,4}$ ]] || [ "$shards" -gt 100000 ]; then
    echo "error: SHARDS $shards: a number of pods from 1 to 100000" >&2
    exit 2
fi
if [ -n "$scenario" ] && [ ! -f "$scenario" ]; then
    echo "error: $scenario: no such file" >&2
    exit 2
fi
if ! [[ $timeout =~ ^[0-9]+$ ]]; then
    echo "error: TIMEOUT $timeout: seconds" >&2
    exit 2
fi

# The image as kustomize wants it: name, then a tag or a digest (a registry's port is
# part of the name: registry:5000/squall:v1 is name registry:5000/squall, tag v1).
image_name=$image image_tag=latest image_digest=""
if [[ $image == *@* ]]; then
    image_name=${image%%@*}
    image_digest=${image#*@}
elif [[ ${image##*/} == *:* ]]; then
    image_name=${image%:*}
    image_tag=${image##*:}
fi

k() {
    if [ -n "${NAMESPACE:-}" ]; then
        "$kubectl" --namespace "$NAMESPACE" "$@"
    else
        "$kubectl" "$@"
    fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'echo; echo "interrupted: the Jobs keep running; delete them with: kubectl delete job -l squall.dev/run-id=$run_id" >&2; exit 130' INT TERM

# A kustomize overlay on one of the directories here: the run id as a name suffix and a
# label, the number of shards and the run id in the Job, the image, the scenario.
overlay() {
    local part=$1 job=$2 container=$3 dir="$work/$1"
    # kustomize takes a base by relative path only: a copy beside the overlay.
    mkdir -p "$dir" "$work/base"
    cp -R "$here/$part" "$work/base/$part"
    {
        echo "apiVersion: kustomize.config.k8s.io/v1beta1"
        echo "kind: Kustomization"
        echo "resources:"
        echo "  - ../base/$part"
        echo "nameSuffix: -$run_id"
        echo "labels:"
        echo "  - pairs:"
        echo "      squall.dev/run-id: \"$run_id\""
        echo "    includeTemplates: true"
        echo "images:"
        echo "  - name: squall"
        echo "    newName: \"$image_name\""
        if [ -n "$image_digest" ]; then
            echo "    digest: \"$image_digest\""
        else
            echo "    newTag: \"$image_tag\""
        fi
        echo "patches:"
        echo "  - patch: |-"
        echo "      apiVersion: batch/v1"
        echo "      kind: Job"
        echo "      metadata:"
        echo "        name: $job"
        echo "      spec:"
        if [ "$part" = shards ]; then
            echo "        completions: $shards"
            echo "        parallelism: $shards"
        fi
        echo "        template:"
        echo "          spec:"
        echo "            containers:"
        echo "              - name: $container"
        echo "                env:"
        echo "                  - name: SHARDS"
        echo "                    value: \"$shards\""
        echo "                  - name: RUN_ID"
        echo "                    value: \"$run_id\""
        if [ "$part" = shards ] && [ -n "$scenario" ]; then
            cp "$scenario" "$dir/scenario.yaml"
            echo "configMapGenerator:"
            echo "  - name: squall-scenario"
            echo "    behavior: replace"
            echo "    files: [scenario.yaml]"
            echo "generatorOptions:"
            echo "  disableNameSuffixHash: true"
        fi
    } >"$dir/kustomization.yaml"
    "$kubectl" kustomize "$dir" >"$work/$part.yaml"
}

# Waits until Job $1 has finished; prints Complete or Failed (or Timeout).
wait_job() {
    local job=$1 waited=0 conditions
    while [ "$waited" -lt "$timeout" ]; do
        conditions=$(k get job "$job" \
            -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{"\n"}{end}')
        if grep -qx Complete <<<"$conditions"; then
            echo Complete
            return
        fi
        if grep -qx Failed <<<"$conditions"; then
            echo Failed
            return
        fi
        sleep 5
        waited=$((waited + 5))
    done
    echo Timeout
}

# The exit codes of Job $1's pods, oldest first, one a line (`none` for a pod whose
# container did not end by itself).
exit_codes() {
    k get pods -l "job-name=$1" --sort-by=.metadata.creationTimestamp \
        -o jsonpath='{range .items[*]}{.status.containerStatuses[0].state.terminated.exitCode}{"\n"}{end}' |
        sed 's/^$/none/'
}

shards_job=squall-shards-$run_id
merge_job=squall-merge-$run_id
if k get job "$shards_job" >/dev/null 2>&1; then
    echo "error: run $run_id exists already (job/$shards_job): choose a new RUN_ID" >&2
    exit 2
fi

overlay shards squall-shards squall
overlay merge squall-merge merge

k apply -f "$here/reports-pvc.yaml"
k apply -f "$work/shards.yaml"
echo "run $run_id: $shards shards, waiting for job/$shards_job (up to ${timeout}s)…"
state=$(wait_job "$shards_job")
echo "job/$shards_job: $state"
case $state in
    Complete) ;;
    Failed)
        codes=$(exit_codes "$shards_job")
        if grep -qx 2 <<<"$codes"; then
            echo "error: a shard refused its input (exit 2); its log:" >&2
            k logs "job/$shards_job" --tail=20 >&2 || true
            exit 2
        fi
        # Shards stopped by an abort_on_fail threshold (exit 1) wrote their reports:
        # the merge gives the verdict. Anything else (3, a signal, the deadline) means
        # the run did not happen as written.
        if grep -vqx '[01]' <<<"$codes"; then
            echo "error: shards failed (exit codes: $(tr '\n' ' ' <<<"$codes")); see" \
                "kubectl logs -l job-name=$shards_job and kubectl describe job/$shards_job" >&2
            exit 3
        fi
        ;;
    *)
        echo "error: job/$shards_job did not finish within ${timeout}s" >&2
        exit 3
        ;;
esac

k apply -f "$work/merge.yaml"
state=$(wait_job "$merge_job")
k logs "job/$merge_job" || true
case $state in
    Complete) exit 0 ;;
    Failed)
        code=$(exit_codes "$merge_job" | tail -n 1)
        # A pod killed without an exit code (the deadline) could not run.
        if ! [[ $code =~ ^[1-9][0-9]*$ ]]; then
            code=3
        fi
        exit "$code"
        ;;
    *)
        echo "error: job/$merge_job did not finish within ${timeout}s" >&2
        exit 3
        ;;
esac
